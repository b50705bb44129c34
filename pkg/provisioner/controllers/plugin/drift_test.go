package plugin

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/catalog"
)

// readyPlugin runs a gpu Plugin until it is Ready in f.
func readyPlugin(t *testing.T, c *Controller, f *fakeCluster) *v1alpha1.Plugin {
	t.Helper()
	f.ready = true
	p := gpuPlugin(true)
	for range 3 {
		st, _, err := c.sync(context.Background(), f, p, catalog.Env{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status = *st
	}
	if p.Status.Phase != v1alpha1.PluginReady {
		t.Fatalf("phase %s, want Ready", p.Status.Phase)
	}
	return p
}

func TestAnUnchangedRenderWritesNothing(t *testing.T) {
	c, f := newController(), newFake()
	p := readyPlugin(t, c, f)
	applied, writes := f.applied, f.writes
	for range 5 {
		st, after, err := c.sync(context.Background(), f, p, catalog.Env{})
		if err != nil {
			t.Fatal(err)
		}
		if !statusEqual(st, &p.Status) {
			t.Errorf("status changed on an unchanged pass: %+v", st)
		}
		if after < time.Minute {
			t.Errorf("a Ready plugin looked at again after %s", after)
		}
	}
	if f.applied != applied || f.writes != writes {
		t.Errorf("%d applies and %d writes for an unchanged render", f.applied-applied, f.writes-writes)
	}
	// A server that restarts (no state) reads and applies, and writes nothing.
	c2 := newController()
	if _, _, err := c2.sync(context.Background(), f, p, catalog.Env{}); err != nil {
		t.Fatal(err)
	}
	if f.writes != writes {
		t.Errorf("a restart wrote %d objects of an unchanged render", f.writes-writes)
	}
	if ev := lastEvent(c2); ev != "" {
		t.Errorf("a restart recorded %q", ev)
	}
}

func TestAChangedSettingIsAppliedNotRepaired(t *testing.T) {
	c, f := newController(), newFake()
	p := readyPlugin(t, c, f)
	p.Spec.Config = map[string]string{"image": "registry.example/device-plugin:v1"}
	st, _, err := c.sync(context.Background(), f, p, catalog.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if st.RenderDigest == p.Status.RenderDigest {
		t.Error("the digest did not change with a setting")
	}
	img, _, _ := unstructured.NestedSlice(f.objs[daemonSet].Object, "spec", "template", "spec", "containers")
	if !strings.Contains(img[0].(map[string]any)["image"].(string), "registry.example/device-plugin:v1") {
		t.Errorf("the new image was not applied: %v", img)
	}
	if ev := lastEvent(c); strings.Contains(ev, "DriftRepaired") {
		t.Errorf("a change of settings was reported as drift: %q", ev)
	}
}

// A tenant who deletes the platform's object in a loop gets it back repairBurst times at
// once, then once per repairEvery: the platform never spins.
func TestRepairsAreBounded(t *testing.T) {
	c, f := newController(), newFake()
	p := readyPlugin(t, c, f)
	writes := f.writes
	var after time.Duration
	for range 3 * repairBurst {
		delete(f.objs, daemonSet)
		c.states.changed("acme/gpu", "", daemonSet, "")
		var err error
		if _, after, err = c.sync(context.Background(), f, p, catalog.Env{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.writes - writes; got != repairBurst {
		t.Errorf("%d repairs in a tight loop, want %d", got, repairBurst)
	}
	if after <= 0 || after > repairEvery {
		t.Errorf("a held-back repair is looked at again after %s, want within %s", after, repairEvery)
	}
	var dirty bool
	c.states.with("acme/gpu", func(ps *pluginState) { dirty = ps.dirty[daemonSet] })
	if !dirty {
		t.Error("a held-back repair was forgotten")
	}
}

func TestTheEchoOfItsOwnWriteIsNotNews(t *testing.T) {
	c, f := newController(), newFake()
	readyPlugin(t, c, f)
	rv := f.objs[daemonSet].GetResourceVersion()
	if c.states.changed("acme/gpu", "", daemonSet, rv) {
		t.Error("the watch's echo of the platform's own write was taken for a change")
	}
	if !c.states.changed("acme/gpu", "", daemonSet, rv+"1") {
		t.Error("a change inside the cluster was not news")
	}
	if c.states.changed("acme/someone-elses", "", daemonSet, "7") {
		t.Error("an object wearing the label of a Plugin this process never applied was news")
	}
}

func TestPruneKeepsWhatHoldsData(t *testing.T) {
	f := newFake()
	obj := func(apiVersion, kind, ns, name string) v1alpha1.AppliedObject {
		o := v1alpha1.AppliedObject{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name}
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(ns)
		u.SetName(name)
		u.SetLabels(map[string]string{v1alpha1.PluginLabel: "mon"})
		f.objs[o] = u
		return o
	}
	withInstances := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "servicemonitors.monitoring.coreos.com")
	empty := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "probes.monitoring.coreos.com")
	holding := obj("v1", "Namespace", "", "ucs-monitoring")
	emptyNS := obj("v1", "Namespace", "", "scratch")
	claim := obj("v1", "PersistentVolumeClaim", "ucs-monitoring", "data")
	cm := obj("v1", "ConfigMap", "ucs-monitoring", "rules")
	f.instances["servicemonitors.monitoring.coreos.com"] = "servicemonitors team/web"
	f.foreignIn["ucs-monitoring"] = "configmaps ucs-monitoring/theirs"
	kept, err := prune(context.Background(), f, "mon", []v1alpha1.AppliedObject{withInstances, empty, holding, emptyNS, claim, cm}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var keptRefs []v1alpha1.AppliedObject
	for _, k := range kept {
		keptRefs = append(keptRefs, k.ref)
	}
	for _, o := range []v1alpha1.AppliedObject{withInstances, holding, claim} {
		if f.objs[o] == nil || !slices.Contains(keptRefs, o) {
			t.Errorf("%s was not kept and named", describe(o))
		}
	}
	for _, o := range []v1alpha1.AppliedObject{empty, emptyNS, cm} {
		if f.objs[o] != nil {
			t.Errorf("%s was kept", describe(o))
		}
	}
	if why := kept[0].why + kept[1].why + kept[2].why; !strings.Contains(why, "servicemonitors team/web") || !strings.Contains(why, "configmaps ucs-monitoring/theirs") {
		t.Errorf("the reasons do not name what is held: %q", why)
	}
}

func TestFirstForeign(t *testing.T) {
	obj := func(group, kind, name, uid string, labels map[string]string, owners ...string) nsObject {
		m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(uid), Labels: labels}}
		for _, o := range owners {
			m.OwnerReferences = append(m.OwnerReferences, metav1.OwnerReference{UID: types.UID(o)})
		}
		return nsObject{group: group, kind: kind, resource: strings.ToLower(kind) + "s", meta: m}
	}
	ours := map[string]string{v1alpha1.PluginLabel: "mon"}
	base := []nsObject{
		obj("apps", "Deployment", "operator", "d", ours),
		obj("apps", "ReplicaSet", "operator-1", "rs", nil, "d"),
		obj("", "Pod", "operator-1-x", "p", nil, "rs"),
		obj("", "ServiceAccount", "default", "sa", nil),
		obj("", "ConfigMap", "kube-root-ca.crt", "ca", nil),
		obj("events.k8s.io", "Event", "e", "e", nil),
	}
	if o := firstForeign(base, "mon"); o != nil {
		t.Errorf("%s %s taken for someone else's", o.kind, o.meta.Name)
	}
	for name, extra := range map[string]nsObject{
		"a tenant's ConfigMap":                          obj("", "ConfigMap", "theirs", "t", nil),
		"another plugin's object":                       obj("apps", "Deployment", "web", "w", map[string]string{v1alpha1.PluginLabel: "other"}),
		"a StatefulSet's claim":                         obj("", "PersistentVolumeClaim", "data-prometheus-0", "c", nil),
		"an object owned from outside the namespace":    obj("", "Secret", "s", "s", nil, "cluster-scoped-uid"),
		"a ServiceAccount the tenant added":             obj("", "ServiceAccount", "robot", "r", nil),
		"objects owning each other and nothing of ours": obj("", "ConfigMap", "loop", "l", nil, "l"),
	} {
		if o := firstForeign(append(slices.Clone(base), extra), "mon"); o == nil || o.meta.Name != extra.meta.Name {
			t.Errorf("%s: found %v", name, o)
		}
	}
}

func TestAnImmutableFieldReplacesTheObject(t *testing.T) {
	c, f := newController(), newFake()
	sc := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
		"metadata": map[string]any{"name": "ucs-local", "labels": map[string]any{v1alpha1.PluginLabel: "csi"}}, "volumeBindingMode": "WaitForFirstConsumer"}}
	if _, err := c.apply(context.Background(), f, sc, "csi"); err != nil {
		t.Fatal(err)
	}
	changed := sc.DeepCopy()
	changed.Object["volumeBindingMode"] = "Immediate"
	f.refuse = "StorageClass"
	got, err := c.apply(context.Background(), f, changed, "csi")
	if err != nil || got.Object["volumeBindingMode"] != "Immediate" {
		t.Fatalf("an immutable field was not replaced: %v, %v", err, got)
	}
	// What holds data is never replaced.
	pvc := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": map[string]any{"name": "data", "namespace": "x", "labels": map[string]any{v1alpha1.PluginLabel: "csi"}}}}
	if _, err := c.apply(context.Background(), f, pvc, "csi"); err != nil {
		t.Fatal(err)
	}
	f.refuse = "PersistentVolumeClaim"
	if _, err := c.apply(context.Background(), f, pvc, "csi"); err == nil {
		t.Error("a claim was replaced to change an immutable field")
	}
}
