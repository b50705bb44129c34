// Package bench compares containerservice-apiserver with the same Cluster shape served as
// a CRD, by the same kube-apiserver on the same etcd, in one run: create, get, list (1k
// and 10k objects) and watch-event latency. Both are driven by the same dynamic client
// through the host, so the difference is what happens behind the front door.
//
//	make bench
package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/test/framework"
)

const (
	workers      = 8   // concurrent creators
	listRepeats  = 10  // lists per size
	getSamples   = 500 // gets measured
	watchSamples = 100 // watch events measured
)

type backend struct {
	name string
	gvr  schema.GroupVersionResource
}

var backends = []backend{
	{"containerservice", schema.GroupVersionResource{Group: "containerservice.ucloudstack.io", Version: "v1alpha1", Resource: "clusters"}},
	{"crd", schema.GroupVersionResource{Group: "bench.ucloudstack.io", Version: "v1alpha1", Resource: "clusters"}},
}

// result holds one measurement per backend.
type result struct {
	op    string
	unit  string
	value map[string]float64
}

func BenchmarkClusterVsCRD(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	env, err := framework.Start(ctx, stack.Config{ServerOnHostEtcd: true, Progress: os.Stderr, ServerArgs: []string{"--provisioner=none"}})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Stop()
	crd, err := os.ReadFile(filepath.Join(env.Root, "test", "bench", "testdata", "crd.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := env.Kubectl(ctx, crd, "apply", "-f", "-"); err != nil {
		b.Fatal(err)
	}
	if _, err := env.Kubectl(ctx, nil, "wait", "--for=condition=Established", "crd/clusters.bench.ucloudstack.io", "--timeout=60s"); err != nil {
		b.Fatal(err)
	}
	if _, err := env.Kubectl(ctx, nil, "create", "namespace", "bench"); err != nil {
		b.Fatal(err)
	}
	cfg := rest.CopyConfig(env.AdminConfig)
	cfg.QPS, cfg.Burst = 1e6, 1e6 // measure the servers, not client-side throttling
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	// The CRD becomes servable a moment after Established; wait until a list succeeds.
	waitServable(ctx, b, client)

	var results []result
	add := func(op, unit string, f func(backend) float64) {
		r := result{op: op, unit: unit, value: map[string]float64{}}
		for _, be := range backends {
			r.value[be.name] = f(be)
		}
		results = append(results, r)
	}
	for _, size := range []int{1000, 10000} {
		from := 0
		if size == 10000 {
			from = 1000
		}
		add(fmt.Sprintf("create %d→%d (%d workers)", from, size, workers), "objects/s", func(be backend) float64 {
			return createRange(ctx, b, client.Resource(be.gvr).Namespace("bench"), be, from, size)
		})
		add(fmt.Sprintf("list %d", size), "ms/list", func(be backend) float64 {
			return listLatency(ctx, b, client.Resource(be.gvr).Namespace("bench"), size)
		})
	}
	add("get", "ms/get", func(be backend) float64 { return getLatency(ctx, b, client.Resource(be.gvr).Namespace("bench")) })
	add("watch event (create→ADDED)", "ms/event", func(be backend) float64 {
		return watchLatency(ctx, b, client.Resource(be.gvr).Namespace("bench"), be)
	})

	report(b, results)
}

func waitServable(ctx context.Context, b *testing.B, client dynamic.Interface) {
	for _, be := range backends {
		for {
			_, err := client.Resource(be.gvr).Namespace("bench").List(ctx, metav1.ListOptions{Limit: 1})
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				b.Fatalf("%s never became servable: %v", be.name, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func object(be backend, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": be.gvr.GroupVersion().String(),
		"kind":       "Cluster",
		"metadata":   map[string]any{"name": name, "namespace": "bench", "labels": map[string]any{"bench": "true"}},
		"spec": map[string]any{
			"version":        "v1.37.1",
			"controlPlane":   map[string]any{"replicas": int64(1)},
			"network":        map[string]any{"ipFamilies": []any{"IPv4"}, "podCIDRs": []any{"10.244.0.0/16"}, "serviceCIDRs": []any{"10.96.0.0/12"}},
			"administrators": []any{map[string]any{"kind": "User", "name": "alice@example.com"}},
		},
	}}
}

// createRange creates objects c-<from> … c-<to-1> with concurrent workers and returns objects per second.
func createRange(ctx context.Context, b *testing.B, ri dynamic.ResourceInterface, be backend, from, to int) float64 {
	names := make(chan string)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for n := range names {
				if _, err := ri.Create(ctx, object(be, n), metav1.CreateOptions{}); err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	for i := from; i < to; i++ {
		names <- fmt.Sprintf("c-%05d", i)
	}
	close(names)
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("%s create: %v", be.name, firstErr)
	}
	return float64(to-from) / time.Since(start).Seconds()
}

func listLatency(ctx context.Context, b *testing.B, ri dynamic.ResourceInterface, want int) float64 {
	var samples []time.Duration
	for range listRepeats {
		start := time.Now()
		l, err := ri.List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
		if len(l.Items) != want {
			b.Fatalf("listed %d objects, want %d", len(l.Items), want)
		}
	}
	return median(samples)
}

func getLatency(ctx context.Context, b *testing.B, ri dynamic.ResourceInterface) float64 {
	var samples []time.Duration
	for i := range getSamples {
		start := time.Now()
		if _, err := ri.Get(ctx, fmt.Sprintf("c-%05d", i*7%10000), metav1.GetOptions{}); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	return median(samples)
}

// watchLatency creates objects one at a time and measures how long each takes to arrive
// on an open watch, from just before the create call.
func watchLatency(ctx context.Context, b *testing.B, ri dynamic.ResourceInterface, be backend) float64 {
	w, err := ri.Watch(ctx, metav1.ListOptions{LabelSelector: "watch=true"})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var samples []time.Duration
	for i := range watchSamples {
		o := object(be, fmt.Sprintf("w-%03d", i))
		o.SetLabels(map[string]string{"watch": "true"})
		start := time.Now()
		if _, err := ri.Create(ctx, o, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Added {
				b.Fatalf("%s watch: %s event", be.name, ev.Type)
			}
		case <-time.After(30 * time.Second):
			b.Fatalf("%s watch: no event within 30s", be.name)
		}
		samples = append(samples, time.Since(start))
	}
	return median(samples)
}

func median(d []time.Duration) float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[len(d)/2].Microseconds()) / 1000
}

// report prints a markdown table (the one docs/benchmarks.md records) and reports each
// ratio as a benchmark metric. For objects/s higher is better; for ms lower is better;
// "ratio" is always CRD cost over ours, so above 1 means containerservice is faster.
func report(b *testing.B, results []result) {
	var sb strings.Builder
	sb.WriteString("| operation | containerservice | CRD | CRD cost / our cost |\n|---|---|---|---|\n")
	for _, r := range results {
		ours, crd := r.value["containerservice"], r.value["crd"]
		ratio := crd / ours
		if r.unit == "objects/s" {
			ratio = ours / crd
		}
		fmt.Fprintf(&sb, "| %s | %.1f %s | %.1f %s | %.2f |\n", r.op, ours, r.unit, crd, r.unit, ratio)
		b.ReportMetric(ratio, strings.NewReplacer(" ", "_", "→", "-", "(", "", ")", "").Replace(r.op)+"_ratio")
	}
	fmt.Println(sb.String())
}

// startStack starts a stack for one benchmark, with progress on standard error and the
// tenant namespace "bench"; the caller stops it.
func startStack(ctx context.Context, b *testing.B, cfg stack.Config) *framework.Env {
	b.Helper()
	cfg.Progress = os.Stderr
	env, err := framework.Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		env.Stop()
		b.Fatal(err)
	}
	return env
}
