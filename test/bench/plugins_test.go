package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	"github.com/ucloudstack/containerservice/pkg/provisioner/catalog"
	"github.com/ucloudstack/containerservice/test/framework"
)

const (
	driftSamples = 100
	idleWindow   = 60 * time.Second
	idleClusters = 5
)

// BenchmarkPlugins measures the add-ons on the local driver:
//
//   - enable → Ready of each catalog entry on a Running 3-node cluster, against
//     `kubectl apply --server-side` of the same rendered objects on a twin cluster
//     (definitions first, then the rest, until every object is Current, read with the same
//     kstatus);
//
//   - how long an object of the monitoring add-on deleted inside the cluster takes to be
//     back, over 100 deletions (p50, p99);
//
//   - the CPU and memory (PSS) of containerservice-apiserver over a minute of idling with
//     5 clusters × 3 add-ons, against the same 5 clusters without add-ons.
//
//     go test -run '^$' -bench Plugins -benchtime 1x ./test/bench/
func BenchmarkPlugins(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	env := startStack(ctx, b, stack.Config{})
	defer env.Stop()
	hostCfg := rest.CopyConfig(env.AdminConfig)
	hostCfg.QPS, hostCfg.Burst = 1e6, 1e6
	cs := versioned.NewForConfigOrDie(hostCfg)

	// Two Running clusters of three nodes: ours and the reference's.
	for _, c := range []string{"ours", "ref"} {
		makeCluster(ctx, b, cs, c, 3)
	}
	oursCfg, _ := adminConfig(ctx, b, cs.ContainerserviceV1alpha1().Clusters("bench"), "ours")
	refCfg, refKubeconfig := adminConfig(ctx, b, cs.ContainerserviceV1alpha1().Clusters("bench"), "ref")
	ours := newObjects(oursCfg)
	ref := newObjects(refCfg)

	var rows strings.Builder
	for _, e := range catalog.Entries() {
		v := e.Newest()
		start := time.Now()
		if _, err := cs.ContainerserviceV1alpha1().Plugins("bench").Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: e.Type},
			Spec: v1alpha1.PluginSpec{ClusterName: "ours", Type: e.Type}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		poll(ctx, b, e.Type+" Ready", 20*time.Millisecond, func() bool {
			p, err := cs.ContainerserviceV1alpha1().Plugins("bench").Get(ctx, e.Type, metav1.GetOptions{})
			return err == nil && p.Status.Phase == v1alpha1.PluginReady
		})
		oursTook := time.Since(start)
		refTook, n := applyServerSide(ctx, b, env, ref, refKubeconfig, e, v)
		fmt.Fprintf(&rows, "| enable → Ready: %s %s (%d objects) | %.2f s | %.2f s | %.2f |\n", e.Type, v.Version, n, oursTook.Seconds(), refTook.Seconds(), refTook.Seconds()/oursTook.Seconds())
		b.ReportMetric(oursTook.Seconds(), "s-ready-"+e.Type)
	}

	// Drift: round-robin over the monitoring add-on's objects that hold nothing (not its
	// definitions or namespace), each deleted and waited back.
	p, err := cs.ContainerserviceV1alpha1().Plugins("bench").Get(ctx, "monitoring", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var targets []v1alpha1.AppliedObject
	for _, o := range p.Status.Applied {
		if o.Kind != "CustomResourceDefinition" && o.Kind != "Namespace" {
			targets = append(targets, o)
		}
	}
	var latencies []time.Duration
	for i := range driftSamples {
		o := targets[i%len(targets)]
		before, err := ours.get(ctx, o)
		if err != nil {
			b.Fatalf("%s: %v", o.Name, err)
		}
		r, _ := ours.resource(o)
		if err := r.Delete(ctx, o.Name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		poll(ctx, b, o.Kind+" "+o.Name+" back", 5*time.Millisecond, func() bool {
			got, err := ours.get(ctx, o)
			return err == nil && got.GetUID() != before.GetUID()
		})
		latencies = append(latencies, time.Since(start))
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	p50, p99 := latencies[len(latencies)/2], latencies[len(latencies)*99/100]
	fmt.Fprintf(&rows, "| drift repair, object deleted → back (%d deletions over %d objects), p50 | %.0f ms | target 2000 ms | %.2f |\n", driftSamples, len(targets), ms(p50), 2000/ms(p50))
	fmt.Fprintf(&rows, "| drift repair, p99 | %.0f ms | target 2000 ms | %.2f |\n", ms(p99), 2000/ms(p99))
	b.ReportMetric(ms(p99), "ms-repair-p99")

	// Idle cost: 5 more clusters of one node, without add-ons, then with three each.
	for _, c := range []string{"ours", "ref"} {
		if err := cs.ContainerserviceV1alpha1().Clusters("bench").Delete(ctx, c, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	poll(ctx, b, "the first clusters gone", 200*time.Millisecond, func() bool {
		list, err := cs.ContainerserviceV1alpha1().Clusters("bench").List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0
	})
	var names []string
	for i := range idleClusters {
		names = append(names, "idle"+strconv.Itoa(i))
		makeCluster(ctx, b, cs, names[i], 1)
	}
	cpuWithout, pssWithout := idle(b, env.ServerPid())
	for _, c := range names {
		for _, e := range catalog.Entries() {
			if _, err := cs.ContainerserviceV1alpha1().Plugins("bench").Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: c + "-" + e.Type},
				Spec: v1alpha1.PluginSpec{ClusterName: c, Type: e.Type}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	poll(ctx, b, "every add-on Ready", 200*time.Millisecond, func() bool {
		list, err := cs.ContainerserviceV1alpha1().Plugins("bench").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		ready := 0
		for _, p := range list.Items {
			if strings.HasPrefix(p.Name, "idle") && p.Status.Phase == v1alpha1.PluginReady {
				ready++
			}
		}
		return ready == idleClusters*len(catalog.Entries())
	})
	cpuWith, pssWith := idle(b, env.ServerPid())
	plugins := float64(idleClusters * len(catalog.Entries()))
	cpuPer := (cpuWith - cpuWithout) / plugins
	pssPer := (pssWith - pssWithout) / plugins
	fmt.Fprintf(&rows, "| containerservice-apiserver idle, %d clusters: CPU without add-ons → with %d | %.2f %% → %.2f %% of a core | | |\n", idleClusters, int(plugins), cpuWithout, cpuWith)
	fmt.Fprintf(&rows, "| containerservice-apiserver PSS without add-ons → with %d | %.0f MiB → %.0f MiB | | |\n", int(plugins), pssWithout, pssWith)
	fmt.Fprintf(&rows, "| idle cost per enabled add-on: CPU | %.3f %% of a core | target 0.05 %% | %.2f |\n", cpuPer, 0.05/max(cpuPer, 0.001))
	fmt.Fprintf(&rows, "| idle cost per enabled add-on: PSS | %.2f MiB | target 1 MiB | %.2f |\n", pssPer, 1/max(pssPer, 0.01))
	b.ReportMetric(cpuPer, "pct-cpu-per-plugin")
	b.ReportMetric(pssPer, "MiB-per-plugin")
	fmt.Printf("| measure | containerservice | reference | ratio (reference / ours) |\n|---|---|---|---|\n%s", rows.String())
}

// makeCluster creates a cluster with n nodes and waits until it and its nodes are Ready.
func makeCluster(ctx context.Context, b *testing.B, cs versioned.Interface, name string, n int) {
	if _, err := cs.ContainerserviceV1alpha1().Clusters("bench").Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ClusterSpec{Administrators: []v1alpha1.Subject{{Kind: v1alpha1.SubjectKindUser, Name: "root@example.com"}}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := cs.ContainerserviceV1alpha1().Nodes("bench").Create(ctx, &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-n%d", name, i)},
			Spec: v1alpha1.NodeSpec{ClusterName: name}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	poll(ctx, b, name+" and its nodes Ready", 100*time.Millisecond, func() bool {
		c, err := cs.ContainerserviceV1alpha1().Clusters("bench").Get(ctx, name, metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ClusterConditionReady) && int(c.Status.Nodes.Ready) == n
	})
}

// objects reaches objects of any kind in a cluster.
type objects struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newObjects(cfg *rest.Config) objects {
	return objects{dyn: dynamic.NewForConfigOrDie(cfg), mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kubernetes.NewForConfigOrDie(cfg).Discovery()))}
}

func (o objects) resource(ref v1alpha1.AppliedObject) (dynamic.ResourceInterface, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, err
	}
	m, err := o.mapper.RESTMapping(gv.WithKind(ref.Kind).GroupKind(), gv.Version)
	if err != nil {
		o.mapper.Reset()
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return o.dyn.Resource(m.Resource).Namespace(ref.Namespace), nil
	}
	return o.dyn.Resource(m.Resource), nil
}

func (o objects) get(ctx context.Context, ref v1alpha1.AppliedObject) (*unstructured.Unstructured, error) {
	r, err := o.resource(ref)
	if err != nil {
		return nil, err
	}
	return r.Get(ctx, ref.Name, metav1.GetOptions{})
}

// applyServerSide is the reference: the entry's objects rendered as the platform renders
// them, applied with kubectl --server-side (definitions and namespaces, established, then
// the rest), until every object is Current. It returns the time and the number of objects.
func applyServerSide(ctx context.Context, b *testing.B, env *framework.Env, ref objects, kubeconfig []byte, e catalog.Entry, v *catalog.Version) (time.Duration, int) {
	objs, err := e.Render(v, v.Values(nil), catalog.Env{})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, kubeconfig, 0o600); err != nil {
		b.Fatal(err)
	}
	var first, rest []string
	var refs []v1alpha1.AppliedObject
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			b.Fatal(err)
		}
		refs = append(refs, v1alpha1.AppliedObject{APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()})
		if k := o.GetKind(); k == "CustomResourceDefinition" || k == "Namespace" {
			first = append(first, string(data))
		} else {
			rest = append(rest, string(data))
		}
	}
	write := func(name string, docs []string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(docs, "\n---\n")), 0o600); err != nil {
			b.Fatal(err)
		}
		return p
	}
	firstFile, restFile := write("first.yaml", first), write("rest.yaml", rest)
	start := time.Now()
	if len(first) > 0 {
		if out, err := env.Kubectl(ctx, nil, "--kubeconfig", kc, "apply", "--server-side", "-f", firstFile); err != nil {
			b.Fatalf("kubectl apply: %v\n%s", err, out)
		}
		if slices.ContainsFunc(refs, func(r v1alpha1.AppliedObject) bool { return r.Kind == "CustomResourceDefinition" }) {
			if out, err := env.Kubectl(ctx, nil, "--kubeconfig", kc, "wait", "--for=condition=Established", "crd", "--all", "--timeout=120s"); err != nil {
				b.Fatalf("kubectl wait: %v\n%s", err, out)
			}
		}
	}
	if out, err := env.Kubectl(ctx, nil, "--kubeconfig", kc, "apply", "--server-side", "-f", restFile); err != nil {
		b.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	poll(ctx, b, e.Type+" current (reference)", 20*time.Millisecond, func() bool {
		for _, r := range refs {
			got, err := ref.get(ctx, r)
			if err != nil {
				return false
			}
			if res, err := status.Compute(got); err != nil || res.Status != status.CurrentStatus {
				return false
			}
		}
		return true
	})
	return time.Since(start), len(refs)
}

// idle lets the machine settle, then returns the process's CPU (% of a core) over
// idleWindow and its proportional memory (PSS, MiB).
func idle(b *testing.B, pid int) (float64, float64) {
	time.Sleep(settle)
	before := cpuTime(b, pid)
	time.Sleep(idleWindow)
	used := cpuTime(b, pid) - before
	return 100 * used.Seconds() / idleWindow.Seconds(), pssMiB(pid)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
