package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// Targets of the provisioning issue on this 2-core machine.
const (
	targetOne  = 20 * time.Second
	targetFive = 60 * time.Second
	targetMiB  = 500.0
	// settle lets a new control plane finish its start-up work (controllers' first
	// syncs, garbage collection) before its memory is measured as idle.
	settle = 30 * time.Second
)

// BenchmarkProvisioning measures create-to-Ready for one cluster and for five at once,
// and the resident memory of an idle cluster (all its processes, the front included), against the targets
// and against the host kube-apiserver of the same run (a stock control plane process).
func BenchmarkProvisioning(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	env := startStack(ctx, b, stack.Config{})
	defer env.Stop()
	api := env.CS.ContainerserviceV1alpha1().Clusters("bench")
	create := func(names ...string) time.Duration {
		start := time.Now()
		for _, n := range names {
			if _, err := api.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		for _, n := range names {
			for {
				c, err := api.Get(ctx, n, metav1.GetOptions{})
				if err == nil && meta.IsStatusConditionTrue(c.Status.Conditions, "Ready") {
					break
				}
				select {
				case <-ctx.Done():
					b.Fatalf("%s not Ready: %v", n, ctx.Err())
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		return time.Since(start)
	}

	one := create("one")
	five := create("c1", "c2", "c3", "c4", "c5")
	time.Sleep(settle)
	var perCluster []float64
	perBinary := map[string]float64{}
	names := []string{"one", "c1", "c2", "c3", "c4", "c5"}
	for _, n := range names {
		total := 0.0
		for pid, binary := range env.ClusterProcesses("bench", n) {
			rss := rssMiB(pid)
			total += rss
			perBinary[binary] += rss / float64(len(names))
		}
		perCluster = append(perCluster, total)
	}
	mean, max := 0.0, 0.0
	for _, m := range perCluster {
		mean += m / float64(len(perCluster))
		max = maxf(max, m)
	}
	host := hostAPIServerMiB(b)

	fmt.Printf(`| measure | containerservice | reference | ratio (reference / ours) |
|---|---|---|---|
| one cluster, create → Ready | %.1f s | target %.0f s | %.2f |
| five clusters at once, create → all Ready | %.1f s | target %.0f s | %.2f |
| idle cluster, RSS of etcd + front + kube-apiserver + kube-controller-manager + kube-scheduler (mean of 6, max %.0f MiB) | %.0f MiB | target %.0f MiB | %.2f |
| idle cluster against the host's stock kube-apiserver alone | %.0f MiB | %.0f MiB | %.2f |
`, one.Seconds(), targetOne.Seconds(), targetOne.Seconds()/one.Seconds(),
		five.Seconds(), targetFive.Seconds(), targetFive.Seconds()/five.Seconds(),
		max, mean, targetMiB, targetMiB/mean, mean, host, host/mean)
	fmt.Printf("\nmean RSS per component: etcd %.0f MiB, containerservice-front %.0f MiB, kube-apiserver %.0f MiB, kube-controller-manager %.0f MiB, kube-scheduler %.0f MiB\n",
		perBinary["etcd"], perBinary["containerservice-front"], perBinary["kube-apiserver"], perBinary["kube-controller-manager"], perBinary["kube-scheduler"])
	b.ReportMetric(one.Seconds(), "s-one-ready")
	b.ReportMetric(five.Seconds(), "s-five-ready")
	b.ReportMetric(mean, "MiB-per-idle-cluster")
}

func rssMiB(pid int) float64 { return procMiB(pid, "status", "VmRSS:") }

// pssMiB is a process's proportional set size: its share of memory, shared pages split
// among the processes that map them.
func pssMiB(pid int) float64 { return procMiB(pid, "smaps_rollup", "Pss:") }

// procMiB reads a kB field of a file of /proc/<pid> in MiB, 0 when the process is gone.
func procMiB(pid int, file, field string) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func hostAPIServerMiB(b *testing.B) float64 {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), "kube-apiserver") || !strings.Contains(string(cmdline), "host-apiserver.crt") {
			continue
		}
		pid, _ := strconv.Atoi(e.Name())
		return rssMiB(pid)
	}
	b.Fatal("no host kube-apiserver found")
	return 0
}

func maxf(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}
