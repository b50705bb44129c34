package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/test/framework"
)

// restartClusters is how many clusters the restart benchmark runs.
const restartClusters = 20

// BenchmarkRestart measures what a restart of containerservice-apiserver costs with 20
// clusters: a crash (SIGKILL) that the control planes outlive, against a reboot where
// every control plane must start again, with starts bounded (--max-concurrent-starts=4,
// the default) and unbounded (20 at once, the stampede the bound prevents).
//
//	go test -run '^$' -bench Restart -benchtime 1x ./test/bench/
func BenchmarkRestart(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	env := startStack(ctx, b, stack.Config{})
	defer env.Stop()
	api := env.CS.ContainerserviceV1alpha1().Clusters("bench")
	var names []string
	start := time.Now()
	for i := range restartClusters {
		name := "r" + strconv.Itoa(i)
		names = append(names, name)
		if _, err := api.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	// allReady waits until every cluster is Ready, observed after since, and returns how
	// long after since the first, the median and the last one became Ready.
	allReady := func(since time.Time) (first, median, last time.Duration) {
		seen := map[string]time.Duration{}
		for len(seen) < restartClusters {
			list, err := api.List(ctx, metav1.ListOptions{})
			if err == nil {
				for _, c := range list.Items {
					if _, ok := seen[c.Name]; ok {
						continue
					}
					if cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ClusterConditionReady); cond != nil &&
						cond.Status == metav1.ConditionTrue && !cond.LastTransitionTime.Time.Before(since.Truncate(time.Second)) {
						seen[c.Name] = time.Since(since)
					}
				}
			}
			select {
			case <-ctx.Done():
				b.Fatalf("only %d of %d clusters Ready: %v", len(seen), restartClusters, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
		times := make([]time.Duration, 0, len(seen))
		for _, d := range seen {
			times = append(times, d)
		}
		slices.Sort(times)
		return times[0], times[len(times)/2], times[len(times)-1]
	}
	_, _, created := allReady(start)

	// A crash: every control plane runs on; the restarted server adopts them all.
	pids := map[string]map[int]string{}
	for _, n := range names {
		pids[n] = env.ClusterProcesses("bench", n)
	}
	kill := time.Now()
	if err := syscall.Kill(env.ServerPid(), syscall.SIGKILL); err != nil {
		b.Fatal(err)
	}
	if err := env.WaitForServer(ctx); err != nil {
		b.Fatal(err)
	}
	served := time.Since(kill)
	adopted := waitReconciled(ctx, b, env, restartClusters)
	crash := time.Since(kill)
	restarted := 0
	for _, n := range names {
		for pid := range pids[n] {
			if _, ok := env.ClusterProcesses("bench", n)[pid]; !ok {
				restarted++
			}
		}
	}

	// A reboot: the server and every control plane stop; each must start again.
	reboot := func(args ...string) (first, median, last time.Duration) {
		env.StopServer()
		env.StopUserClusters()
		t0 := time.Now()
		if err := env.StartServer(ctx, args...); err != nil {
			b.Fatal(err)
		}
		return allReady(t0)
	}
	bFirst, bMedian, bLast := reboot("--max-concurrent-starts=4")
	sFirst, sMedian, sLast := reboot("--max-concurrent-starts=" + strconv.Itoa(restartClusters))

	fmt.Printf(`| measure (%d clusters) | containerservice | reference | ratio (reference / ours) |
|---|---|---|---|
| create all at once → all Ready | %.1f s | | |
| server SIGKILL → API served again | %.1f s | | |
| server SIGKILL → all clusters adopted and checked | %.1f s (%d reconciles) | a reboot, bounded: %.1f s | %.1f |
| control plane processes restarted by the crash | %d of %d | | |
| reboot, --max-concurrent-starts=4 → first cluster Ready | %.1f s | all %d at once: %.1f s | %.2f |
| reboot, --max-concurrent-starts=4 → half the clusters Ready | %.1f s | all %d at once: %.1f s | %.2f |
| reboot, --max-concurrent-starts=4 → all Ready | %.1f s | all %d at once: %.1f s | %.2f |
`, restartClusters, created.Seconds(), served.Seconds(), crash.Seconds(), adopted, bLast.Seconds(), bLast.Seconds()/crash.Seconds(),
		restarted, 4*restartClusters,
		bFirst.Seconds(), restartClusters, sFirst.Seconds(), sFirst.Seconds()/bFirst.Seconds(),
		bMedian.Seconds(), restartClusters, sMedian.Seconds(), sMedian.Seconds()/bMedian.Seconds(),
		bLast.Seconds(), restartClusters, sLast.Seconds(), sLast.Seconds()/bLast.Seconds())
	b.ReportMetric(crash.Seconds(), "s-crash-adopt-all")
	b.ReportMetric(bMedian.Seconds(), "s-reboot-median-bounded")
	b.ReportMetric(bLast.Seconds(), "s-reboot-all-bounded")
	b.ReportMetric(sLast.Seconds(), "s-reboot-all-unbounded")
}

// waitReconciled waits until the server's cluster controller has reconciled n clusters
// successfully since it started, and returns how many reconciles it counted.
func waitReconciled(ctx context.Context, b *testing.B, env *framework.Env, n int) int {
	for {
		if ok := reconciledOK(ctx, env); ok >= n {
			return ok
		}
		select {
		case <-ctx.Done():
			b.Fatalf("the restarted server did not reconcile %d clusters", n)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reconciledOK reads containerservice_controller_reconciles_total{controller="cluster",result="ok"}.
func reconciledOK(ctx context.Context, env *framework.Env) int {
	cfg, err := env.DirectConfig()
	if err != nil {
		return 0
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0
	}
	data, err := client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, `containerservice_controller_reconciles_total{controller="cluster",result="ok"}`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return int(v)
		}
	}
	return 0
}
