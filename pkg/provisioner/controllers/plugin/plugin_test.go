package plugin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// fakeCluster is a Target in memory; ready makes what it applies report itself ready.
type fakeCluster struct {
	objs    map[v1alpha1.AppliedObject]*unstructured.Unstructured
	ready   bool
	applied int
}

func newFake() *fakeCluster {
	return &fakeCluster{objs: map[v1alpha1.AppliedObject]*unstructured.Unstructured{}}
}

func (f *fakeCluster) Get(_ context.Context, o v1alpha1.AppliedObject) (*unstructured.Unstructured, error) {
	return f.objs[o], nil
}

func (f *fakeCluster) Apply(_ context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	f.applied++
	got := o.DeepCopy()
	got.SetGeneration(1)
	if f.ready && got.GetKind() == "DaemonSet" {
		_ = unstructured.SetNestedMap(got.Object, map[string]any{"observedGeneration": int64(1), "desiredNumberScheduled": int64(1),
			"currentNumberScheduled": int64(1), "updatedNumberScheduled": int64(1), "numberAvailable": int64(1), "numberReady": int64(1)}, "status")
	}
	f.objs[ref(got)] = got
	return got, nil
}

func (f *fakeCluster) Delete(_ context.Context, o v1alpha1.AppliedObject, plugin string) error {
	if cur := f.objs[o]; cur != nil && cur.GetLabels()[v1alpha1.PluginLabel] == plugin {
		delete(f.objs, o)
	}
	return nil
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
	st, _, err := c.sync(context.Background(), f, p)
	if err != nil {
		t.Fatal(err)
	}
	p.Status = *st
	st, _, err = c.sync(context.Background(), f, p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestEnableAppliesAndReportsHealth(t *testing.T) {
	c := &Controller{recorder: record.NewFakeRecorder(10)}
	f := newFake()
	p := gpuPlugin(true)
	first, _, err := c.sync(context.Background(), f, p)
	if err != nil {
		t.Fatal(err)
	}
	// The inventory is written before anything is applied.
	if f.applied != 0 || len(first.Applied) != 1 || first.Applied[0] != daemonSet {
		t.Fatalf("first pass: %d applied, inventory %v; want nothing applied and the DaemonSet recorded", f.applied, first.Applied)
	}
	p.Status = *first
	st, _, err := c.sync(context.Background(), f, p)
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
	st, _, _ = c.sync(context.Background(), f, p)
	if st.Phase != v1alpha1.PluginReady || !st.Ready {
		t.Errorf("every object current: phase %s, ready %v", st.Phase, st.Ready)
	}
	// Deleted inside the cluster: applied again at the next look.
	delete(f.objs, daemonSet)
	p.Status = *st
	if _, _, err := c.sync(context.Background(), f, p); err != nil || f.objs[daemonSet] == nil {
		t.Errorf("a deleted object was not put back: %v", err)
	}
}

func TestNeverTakesOver(t *testing.T) {
	c := &Controller{recorder: record.NewFakeRecorder(10)}
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
	c := &Controller{recorder: record.NewFakeRecorder(10)}
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
	st, _, err := c.sync(context.Background(), f, p)
	if err != nil {
		t.Fatal(err)
	}
	if f.objs[daemonSet] != nil || f.objs[other] == nil {
		t.Errorf("after disabling: DaemonSet %v, the tenant's ConfigMap %v", f.objs[daemonSet] != nil, f.objs[other] != nil)
	}
	if st.Phase != v1alpha1.PluginDisabled || len(st.Applied) != 0 {
		t.Errorf("phase %s, inventory %v, want Disabled and none", st.Phase, st.Applied)
	}
	if ev := <-c.recorder.(*record.FakeRecorder).Events; !strings.Contains(ev, "kept PersistentVolumeClaim kube-system/data") {
		t.Errorf("event %q, want the kept claim named", ev)
	}
}

func TestAnAddOnNotBuiltWaitsAndSaysSo(t *testing.T) {
	c := &Controller{recorder: record.NewFakeRecorder(10)}
	p := gpuPlugin(true)
	p.Spec.Type = "monitoring"
	st, _, err := c.sync(context.Background(), newFake(), p)
	if err != nil {
		t.Fatal(err)
	}
	if cond := meta.FindStatusCondition(st.Conditions, v1alpha1.PluginConditionReady); st.Phase != v1alpha1.PluginPending || cond == nil || cond.Reason != "NotBuilt" {
		t.Errorf("phase %s, condition %v", st.Phase, cond)
	}
}

// An error of the user cluster, a 409 from a tenant's webhook say, is retried with backoff,
// never taken for a conflict of the Plugin itself (retried at once, without backoff).
func TestRemoteConflictsAreNotOurs(t *testing.T) {
	c := &Controller{recorder: record.NewFakeRecorder(10)}
	f := &conflictingCluster{fakeCluster: newFake()}
	p := gpuPlugin(true)
	p.Status.Applied = []v1alpha1.AppliedObject{daemonSet}
	_, _, err := c.sync(context.Background(), f, p)
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
