package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	"github.com/ucloudstack/containerservice/pkg/provisioner/front"
)

const frontSamples = 1000

// BenchmarkFront measures what a cluster's front costs and what it buys, on a Running
// cluster, each against the kube-apiserver behind it in the same run:
//
//   - GET /version on a kept connection and on a new connection each time, through the
//     published port (the front) and straight to the kube-apiserver's slot port (p50);
//
//   - the front's CPU and memory (PSS) over a minute of idling, beside the kube-apiserver's;
//
//   - a credential rotation, which replaces the kube-apiserver behind the front: how long
//     the replacement takes, and how many of the new connections opened every 20 ms
//     meanwhile fail.
//
//     go test -run '^$' -bench Front -benchtime 1x ./test/bench/
func BenchmarkFront(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	env := startStack(ctx, b, stack.Config{})
	defer env.Stop()
	cs := versioned.NewForConfigOrDie(env.AdminConfig)
	makeCluster(ctx, b, cs, "front", 0)
	cfg, _ := adminConfig(ctx, b, cs.ContainerserviceV1alpha1().Clusters("bench"), "front")
	dir := env.ClusterDir("bench", "front")
	direct := rest.CopyConfig(cfg)
	direct.Host = "https://" + servingBackend(b, dir)

	kept := map[string]time.Duration{}
	fresh := map[string]time.Duration{}
	for name, c := range map[string]*rest.Config{"front": cfg, "direct": direct} {
		kept[name] = p50(b, c, true)
		fresh[name] = p50(b, c, false)
	}

	procs := env.ClusterProcesses("bench", "front")
	frontPid, apiserverPid := pidNamed(b, procs, "containerservice-front"), pidNamed(b, procs, "kube-apiserver")
	time.Sleep(settle)
	frontCPU, apiserverCPU := cpuTime(b, frontPid), cpuTime(b, apiserverPid)
	time.Sleep(idleWindow)
	frontIdle := 100 * (cpuTime(b, frontPid) - frontCPU).Seconds() / idleWindow.Seconds()
	apiserverIdle := 100 * (cpuTime(b, apiserverPid) - apiserverCPU).Seconds() / idleWindow.Seconds()
	frontPSS, apiserverPSS := pssMiB(frontPid), pssMiB(apiserverPid)

	// A rotation: the kube-apiserver is replaced; new connections every 20 ms meanwhile.
	stop := make(chan struct{})
	counts := make(chan [2]int)
	go func() {
		ok, failed := 0, 0
		t := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true} //nolint:gosec // only counted
		c := &http.Client{Transport: t, Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				counts <- [2]int{ok, failed}
				return
			case <-time.After(20 * time.Millisecond):
			}
			resp, err := c.Get(cfg.Host + "/readyz")
			if err == nil {
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				failed++
			} else {
				ok++
			}
		}
	}()
	start := time.Now()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"bench"}}}`, v1alpha1.RotateCredentialsAnnotation)
	if _, err := cs.ContainerserviceV1alpha1().Clusters("bench").Patch(ctx, "front", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		b.Fatal(err)
	}
	poll(ctx, b, "the kube-apiserver replaced", 50*time.Millisecond, func() bool {
		_, old := env.ClusterProcesses("bench", "front")[apiserverPid]
		c, err := cs.ContainerserviceV1alpha1().Clusters("bench").Get(ctx, "front", metav1.GetOptions{})
		return !old && err == nil && c.Status.Phase == v1alpha1.ClusterRunning && c.Status.CredentialsRotation == "bench"
	})
	surge := time.Since(start)
	close(stop)
	n := <-counts

	fmt.Printf(`
| measure | through the front | straight to kube-apiserver | ratio (straight / front) |
|---|---|---|---|
| GET /version, kept connection, p50 of %d | %s | %s | %.2f |
| GET /version, a new connection each, p50 of %d | %s | %s | %.2f |
| idle CPU over %s (front / kube-apiserver) | %.3f %% of a core | %.3f %% of a core | |
| PSS (front / kube-apiserver) | %.1f MiB | %.1f MiB | |

credential rotation, kube-apiserver replaced behind the front: %.1f s to Running with the old process gone; new connections every 20 ms meanwhile: %d, failed: %d
`, frontSamples, us(kept["front"]), us(kept["direct"]), float64(kept["direct"])/float64(kept["front"]),
		frontSamples, us(fresh["front"]), us(fresh["direct"]), float64(fresh["direct"])/float64(fresh["front"]),
		idleWindow, frontIdle, apiserverIdle, frontPSS, apiserverPSS, surge.Seconds(), n[0]+n[1], n[1])
	b.ReportMetric(float64(kept["front"]-kept["direct"])/1e3, "us-added-kept")
	b.ReportMetric(frontIdle, "pct-core-front-idle")
	b.ReportMetric(float64(n[1]), "failed-connections-in-surge")
}

// servingBackend is the address of the kube-apiserver the cluster's front sends to.
func servingBackend(b *testing.B, dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "front.json"))
	if err != nil {
		b.Fatal(err)
	}
	var cfg front.Config
	if err := json.Unmarshal(data, &cfg); err != nil || len(cfg.Backends) != 1 {
		b.Fatalf("front config %s: %v", data, err)
	}
	return cfg.Backends[0].Address
}

// p50 is the median of frontSamples GET /version, on one kept connection or a new one each.
func p50(b *testing.B, cfg *rest.Config, keep bool) time.Duration {
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		b.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: !keep, ForceAttemptHTTP2: true}}
	var lat []time.Duration
	for range frontSamples {
		start := time.Now()
		resp, err := c.Get(cfg.Host + "/version")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET /version through %s: %d", cfg.Host, resp.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return lat[len(lat)/2]
}

func pidNamed(b *testing.B, procs map[int]string, binary string) int {
	for pid, name := range procs {
		if strings.HasPrefix(name, binary) {
			return pid
		}
	}
	b.Fatalf("no %s among %v", binary, procs)
	return 0
}
