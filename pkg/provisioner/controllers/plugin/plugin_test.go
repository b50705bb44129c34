package plugin

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/record"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/catalog"
)

// fakeCluster is a Target in memory; ready makes what it applies report itself ready.
// An apply that changes nothing keeps the resourceVersion, as server-side apply does.
type fakeCluster struct {
	// mu guards everything: a pass applies the objects of a stage at once.
	mu      sync.Mutex
	objs    map[v1alpha1.AppliedObject]*unstructured.Unstructured
	sent    map[v1alpha1.AppliedObject]*unstructured.Unstructured
	ready   bool
	applied int
	writes  int
	rv      int
	// instances and foreignIn answer Instance and Foreign.
	instances, foreignIn map[string]string
	// refuse makes the next apply of the named kind fail as an immutable field does.
	refuse string
}

func newFake() *fakeCluster {
	return &fakeCluster{objs: map[v1alpha1.AppliedObject]*unstructured.Unstructured{}, sent: map[v1alpha1.AppliedObject]*unstructured.Unstructured{},
		instances: map[string]string{}, foreignIn: map[string]string{}}
}

func (f *fakeCluster) Get(_ context.Context, o v1alpha1.AppliedObject) (*unstructured.Unstructured, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rolledOut(f.objs[o]), nil
}

func (f *fakeCluster) Meta(_ context.Context, o v1alpha1.AppliedObject) (*metav1.PartialObjectMetadata, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.objs[o]
	if cur == nil {
		return nil, nil
	}
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: cur.GetName(), Namespace: cur.GetNamespace(),
		Labels: cur.GetLabels(), ResourceVersion: cur.GetResourceVersion()}}, nil
}

// rolledOut gives a DaemonSet the status of one rolled out, once the fake is ready.
func (f *fakeCluster) rolledOut(o *unstructured.Unstructured) *unstructured.Unstructured {
	if o == nil || !f.ready || o.GetKind() != "DaemonSet" {
		return o
	}
	o = o.DeepCopy()
	_ = unstructured.SetNestedMap(o.Object, map[string]any{"observedGeneration": int64(1), "desiredNumberScheduled": int64(1),
		"currentNumberScheduled": int64(1), "updatedNumberScheduled": int64(1), "numberAvailable": int64(1), "numberReady": int64(1)}, "status")
	return o
}

func (f *fakeCluster) Apply(_ context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied++
	if f.refuse == o.GetKind() && f.objs[ref(o)] != nil {
		f.refuse = ""
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: "storage.k8s.io", Kind: o.GetKind()}, o.GetName(),
			field.ErrorList{field.Invalid(field.NewPath("volumeBindingMode"), "Immediate", "field is immutable")})
	}
	if cur := f.objs[ref(o)]; cur != nil && apiequality.Semantic.DeepEqual(f.sent[ref(o)], o) {
		return f.rolledOut(cur), nil
	}
	f.writes++
	f.rv++
	got := o.DeepCopy()
	got.SetGeneration(1)
	got.SetResourceVersion(strconv.Itoa(f.rv))
	f.objs[ref(got)], f.sent[ref(got)] = got, o.DeepCopy()
	return f.rolledOut(got), nil
}

func (f *fakeCluster) Delete(_ context.Context, o v1alpha1.AppliedObject, plugin string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur := f.objs[o]; cur != nil && cur.GetLabels()[v1alpha1.PluginLabel] == plugin {
		delete(f.objs, o)
	}
	return nil
}

func (f *fakeCluster) Instance(_ context.Context, crd string) (string, error) {
	return f.instances[crd], nil
}

func (f *fakeCluster) Foreign(_ context.Context, ns, _ string) (string, error) {
	return f.foreignIn[ns], nil
}

func newController() *Controller {
	return &Controller{recorder: record.NewFakeRecorder(100), states: newStates()}
}

func gpuPlugin(enabled bool) *v1alpha1.Plugin {
	return &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "gpu", Namespace: "acme", Generation: 3},
		Spec: v1alpha1.PluginSpec{ClusterName: "prod", Type: "gpu-device-plugin", Enabled: &enabled}}
}

var daemonSet = v1alpha1.AppliedObject{APIVersion: "apps/v1", Kind: "DaemonSet", Namespace: "kube-system", Name: "nvidia-device-plugin-daemonset"}

// syncTwice is a pass that records the inventory, its status written, then the pass that
// applies.
func syncTwice(t *testing.T, c *Controller, f *fakeCluster, p *v1alpha1.Plugin) *v1alpha1.PluginStatus {
	t.Helper()
	st, _, err := c.sync(context.Background(), f, p, catalog.Env{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status = *st
	st, _, err = c.sync(context.Background(), f, p, catalog.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestEnableAppliesAndReportsHealth(t *testing.T) {
	c := newController()
	f := newFake()
	p := gpuPlugin(true)
	first, _, err := c.sync(context.Background(), f, p, catalog.Env{})
	if err != nil {
		t.Fatal(err)
	}
	// The inventory is written before anything is applied.
	if f.applied != 0 || len(first.Applied) != 1 || first.Applied[0] != daemonSet {
		t.Fatalf("first pass: %d applied, inventory %v; want nothing applied and the DaemonSet recorded", f.applied, first.Applied)
	}
	p.Status = *first
	st, _, err := c.sync(context.Background(), f, p, catalog.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ds := f.objs[daemonSet]
	if ds == nil || ds.GetLabels()[v1alpha1.PluginLabel] != "gpu" || ds.GetLabels()[v1alpha1.ManagedByLabel] != v1alpha1.ManagedByValue {
		t.Fatalf("the DaemonSet was not applied with the plugin's labels: %v", ds)
	}
	if len(st.Applied) != 1 || st.Applied[0] != daemonSet || st.Version != "0.17.0" {
		t.Errorf("inventory %v, version %q", st.Applied, st.Version)
	}
	if st.Phase != v1alpha1.PluginApplying || st.Ready || !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.PluginConditionApplied) {
		t.Errorf("a DaemonSet not rolled out: phase %s, ready %v, conditions %v", st.Phase, st.Ready, st.Conditions)
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.PluginConditionReady); c == nil || !strings.Contains(c.Message, "DaemonSet kube-system/nvidia-device-plugin-daemonset") {
		t.Errorf("the Ready condition does not name the object that holds it back: %v", c)
	}
	f.ready = true
	p.Status = *st
	st, _, _ = c.sync(context.Background(), f, p, catalog.Env{})
	if st.Phase != v1alpha1.PluginReady || !st.Ready {
		t.Errorf("every object current: phase %s, ready %v", st.Phase, st.Ready)
	}
	if st.CurrentObjects != 1 || st.RenderDigest == "" {
		t.Errorf("current objects %d, digest %q", st.CurrentObjects, st.RenderDigest)
	}
	// Deleted inside the cluster: the watch says so, and it is put back, with an Event.
	delete(f.objs, daemonSet)
	if !c.states.changed("acme/gpu", "", daemonSet, "") {
		t.Fatal("a deletion reported by the watch was not news")
	}
	p.Status = *st
	if _, _, err := c.sync(context.Background(), f, p, catalog.Env{}); err != nil || f.objs[daemonSet] == nil {
		t.Errorf("a deleted object was not put back: %v", err)
	}
	if ev := lastEvent(c); !strings.Contains(ev, "DriftRepaired put back DaemonSet kube-system/nvidia-device-plugin-daemonset (deleted inside the cluster)") {
		t.Errorf("event %q, want DriftRepaired naming the DaemonSet", ev)
	}
}

// lastEvent is the newest Event recorded, "" when none.
func lastEvent(c *Controller) string {
	var last string
	for {
		select {
		case ev := <-c.recorder.(*record.FakeRecorder).Events:
			last = ev
		default:
			return last
		}
	}
}

func TestNeverTakesOver(t *testing.T) {
	c := newController()
	f := newFake()
	theirs := &unstructured.Unstructured{}
	theirs.SetAPIVersion("apps/v1")
	theirs.SetKind("DaemonSet")
	theirs.SetNamespace("kube-system")
	theirs.SetName("nvidia-device-plugin-daemonset")
	f.objs[daemonSet] = theirs
	st := syncTwice(t, c, f, gpuPlugin(true))
	if st.Phase != v1alpha1.PluginFailed || f.applied != 0 {
		t.Errorf("phase %s after %d applies, want Failed and nothing applied", st.Phase, f.applied)
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.PluginConditionReady); c == nil || !strings.Contains(c.Message, "nvidia-device-plugin-daemonset exists and was not made by this plugin") {
		t.Errorf("the condition does not name the object: %v", c)
	}
}

func TestDisableRemovesExactlyTheInventory(t *testing.T) {
	c := newController()
	f := newFake()
	p := gpuPlugin(true)
	st := syncTwice(t, c, f, p)
	// Something of the tenant's in the cluster, and a claim the plugin once made.
	other := v1alpha1.AppliedObject{APIVersion: "v1", Kind: "ConfigMap", Namespace: "kube-system", Name: "theirs"}
	f.objs[other] = &unstructured.Unstructured{}
	claim := v1alpha1.AppliedObject{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: "kube-system", Name: "data"}
	st.Applied = append(st.Applied, claim)
	p = gpuPlugin(false)
	p.Status = *st
	st, _, err := c.sync(context.Background(), f, p, catalog.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if f.objs[daemonSet] != nil || f.objs[other] == nil {
		t.Errorf("after disabling: DaemonSet %v, the tenant's ConfigMap %v", f.objs[daemonSet] != nil, f.objs[other] != nil)
	}
	if st.Phase != v1alpha1.PluginDisabled || len(st.Applied) != 0 {
		t.Errorf("phase %s, inventory %v, want Disabled and none", st.Phase, st.Applied)
	}
	if ev := lastEvent(c); !strings.Contains(ev, "kept PersistentVolumeClaim kube-system/data") {
		t.Errorf("event %q, want the kept claim named", ev)
	}
	if len(st.Kept) != 1 || st.Kept[0] != claim {
		t.Errorf("status.kept %v, want the claim", st.Kept)
	}
}

// An error of the user cluster, a 409 from a tenant's webhook say, is retried with backoff,
// never taken for a conflict of the Plugin itself (retried at once, without backoff).
func TestRemoteConflictsAreNotOurs(t *testing.T) {
	c := newController()
	f := &conflictingCluster{fakeCluster: newFake()}
	p := gpuPlugin(true)
	p.Status.Applied = []v1alpha1.AppliedObject{daemonSet}
	_, _, err := c.sync(context.Background(), f, p, catalog.Env{})
	if err == nil || apierrors.IsConflict(err) {
		t.Errorf("error %v: want an error that is no conflict", err)
	}
}

type conflictingCluster struct{ *fakeCluster }

func (f *conflictingCluster) Apply(context.Context, *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	return nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "daemonsets"}, "x", errors.New("denied by webhook"))
}

func TestSameCluster(t *testing.T) {
	p := gpuPlugin(true)
	cl := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod", UID: "u2"}}
	if !sameCluster(p, cl) {
		t.Error("a Plugin not yet bound is bound to any cluster of its name")
	}
	p.Annotations = map[string]string{v1alpha1.PluginClusterUIDAnnotation: "u1"}
	if sameCluster(p, cl) {
		t.Error("a cluster made again under the same name is taken for the Plugin's own")
	}
}

func TestLongMessagesStayValidText(t *testing.T) {
	st := &v1alpha1.PluginStatus{}
	setReady(st, 1, metav1.ConditionFalse, "Progressing", strings.Repeat("é", 600))
	if msg := st.Conditions[0].Message; !utf8.ValidString(msg) || len(msg) > 1024 {
		t.Errorf("message of %d bytes, valid UTF-8 %v", len(msg), utf8.ValidString(msg))
	}
}
