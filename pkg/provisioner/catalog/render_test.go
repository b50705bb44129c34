package catalog

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Every version of the catalog renders with its defaults, with and without a storage
// class, or is not built yet: a template that does not parse, execute or decode never
// ships.
func TestEveryVersionRenders(t *testing.T) {
	for _, e := range Entries() {
		for i := range e.Versions {
			v := &e.Versions[i]
			for _, env := range []Env{{}, {StorageClass: "standard"}} {
				objs, err := e.Render(v, v.Values(nil), env)
				if errors.Is(err, ErrNotBuilt) {
					t.Logf("%s %s is not built yet", e.Type, v.Version)
					continue
				}
				if err != nil {
					t.Errorf("%s %s, %+v: %v", e.Type, v.Version, env, err)
					continue
				}
				if len(objs) == 0 {
					t.Errorf("%s %s rendered nothing", e.Type, v.Version)
				}
			}
		}
	}
}

// monitoringCRDs are the definitions the operator needs to start: those of
// monitoring.coreos.com v1 and v1alpha1 (v1beta1, which needs the conversion webhook, is
// left out as in upstream's bundle).
var monitoringCRDs = []string{
	"alertmanagerconfigs.monitoring.coreos.com",
	"alertmanagers.monitoring.coreos.com",
	"podmonitors.monitoring.coreos.com",
	"probes.monitoring.coreos.com",
	"prometheusagents.monitoring.coreos.com",
	"prometheuses.monitoring.coreos.com",
	"prometheusrules.monitoring.coreos.com",
	"scrapeconfigs.monitoring.coreos.com",
	"servicemonitors.monitoring.coreos.com",
	"thanosrulers.monitoring.coreos.com",
}

func renderMonitoring(t *testing.T, config map[string]string, env Env) []*unstructured.Unstructured {
	t.Helper()
	e := Lookup("monitoring")
	objs, err := e.Render(e.Newest(), e.Newest().Values(config), env)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func TestRenderMonitoring(t *testing.T) {
	objs := renderMonitoring(t, map[string]string{"retention": "30d", "replicas": "3", "storageSize": "20Gi"}, Env{})

	var crds []string
	clusterScoped := map[string]bool{"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o.GetName())
		}
		if ns := o.GetNamespace(); clusterScoped[o.GetKind()] != (ns == "") || ns != "" && ns != "ucs-monitoring" {
			t.Errorf("%s %s in namespace %q: want ucs-monitoring, or none for what is cluster-wide", o.GetKind(), o.GetName(), ns)
		}
	}
	slices.Sort(crds)
	if !slices.Equal(crds, monitoringCRDs) {
		t.Errorf("CRDs %v, want %v", crds, monitoringCRDs)
	}
	for _, want := range []struct{ kind, name string }{
		{"Namespace", "ucs-monitoring"},
		{"Deployment", "prometheus-operator"}, {"Service", "prometheus-operator"},
		{"Prometheus", "main"}, {"Service", "prometheus-main"},
		{"Alertmanager", "main"}, {"Service", "alertmanager-main"},
		{"Deployment", "kube-state-metrics"}, {"Service", "kube-state-metrics"},
		{"DaemonSet", "node-exporter"}, {"Service", "node-exporter"},
		{"ServiceMonitor", "prometheus-operator"}, {"ServiceMonitor", "prometheus-main"}, {"ServiceMonitor", "alertmanager-main"},
		{"ServiceMonitor", "kube-state-metrics"}, {"ServiceMonitor", "node-exporter"},
		{"PrometheusRule", "ucs-monitoring"},
	} {
		if find(objs, want.kind, want.name) == nil {
			t.Errorf("no %s %s", want.kind, want.name)
		}
	}
	if find(objs, "Secret", "") != nil || slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "Secret" }) {
		t.Error("a Secret is rendered: the add-on carries no credentials")
	}

	prom := find(objs, "Prometheus", "main")
	if got, _, _ := unstructured.NestedString(prom.Object, "spec", "retention"); got != "30d" {
		t.Errorf("retention %q, want 30d", got)
	}
	// A count is a number: the CRD's schema refuses "3".
	if got, _, _ := unstructured.NestedFieldNoCopy(prom.Object, "spec", "replicas"); got != int64(3) {
		t.Errorf("Prometheus replicas %#v, want the number 3", got)
	}
	if got, _, _ := unstructured.NestedFieldNoCopy(find(objs, "Alertmanager", "main").Object, "spec", "replicas"); got != int64(3) {
		t.Errorf("Alertmanager replicas %#v, want the number 3", got)
	}
	for _, sel := range []string{"serviceMonitorSelector", "serviceMonitorNamespaceSelector", "ruleSelector"} {
		if got, found, _ := unstructured.NestedMap(prom.Object, "spec", sel); !found || len(got) != 0 {
			t.Errorf("%s %v (found %v), want {}: everything, in every namespace", sel, got, found)
		}
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(prom.Object, "spec", "storage"); found {
		t.Error("a storage stanza without a storage class: want none (emptyDir)")
	}

	// Prometheus' own templates come through the Go template whole.
	rule := find(objs, "PrometheusRule", "ucs-monitoring")
	if data, _ := json.Marshal(rule.Object); !strings.Contains(string(data), "{{ $labels.namespace }}/{{ $labels.pod }}") {
		t.Errorf("the rules lost Prometheus' templates: %s", data)
	}

	// Every image is pinned by a tag.
	for _, o := range objs {
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			image := c.(map[string]any)["image"].(string)
			if tag := image[strings.LastIndex(image, ":")+1:]; !strings.Contains(image, ":") || tag == "latest" || strings.Contains(tag, "/") {
				t.Errorf("%s %s: image %s is not pinned", o.GetKind(), o.GetName(), image)
			}
		}
		if image, found, _ := unstructured.NestedString(o.Object, "spec", "image"); found && !strings.Contains(image, ":v") {
			t.Errorf("%s %s: image %s is not pinned", o.GetKind(), o.GetName(), image)
		}
	}
}

func TestMonitoringStorageFollowsTheStorageClass(t *testing.T) {
	objs := renderMonitoring(t, map[string]string{"storageSize": "20Gi"}, Env{StorageClass: "csi-local"})
	claim, found, _ := unstructured.NestedMap(find(objs, "Prometheus", "main").Object, "spec", "storage", "volumeClaimTemplate", "spec")
	if !found {
		t.Fatal("no volumeClaimTemplate with a storage class")
	}
	if claim["storageClassName"] != "csi-local" {
		t.Errorf("storageClassName %v, want csi-local", claim["storageClassName"])
	}
	if got, _, _ := unstructured.NestedString(claim, "resources", "requests", "storage"); got != "20Gi" {
		t.Errorf("storage request %q, want 20Gi", got)
	}
}

// Values reach the manifests quoted (or as numbers): whatever admission let through, and
// whatever the environment says, cannot add keys.
func TestMonitoringValuesCannotAddKeys(t *testing.T) {
	evil := "x\"\n    hostNetwork: true\n    y: \""
	objs := renderMonitoring(t, map[string]string{"retention": evil}, Env{StorageClass: evil})
	spec, _, _ := unstructured.NestedMap(find(objs, "Prometheus", "main").Object, "spec")
	if spec["retention"] != evil {
		t.Errorf("retention %q, want the value as one string", spec["retention"])
	}
	claim, _, _ := unstructured.NestedMap(spec, "storage", "volumeClaimTemplate", "spec")
	if claim["storageClassName"] != evil {
		t.Errorf("storageClassName %q, want the value as one string", claim["storageClassName"])
	}
	for _, m := range []map[string]any{spec, claim} {
		if _, found := m["hostNetwork"]; found {
			t.Error("a value added a key")
		}
	}

	e := Lookup("monitoring")
	if _, err := e.Render(e.Newest(), e.Newest().Values(map[string]string{"replicas": "1\nhostNetwork: true"}), Env{}); err == nil || !strings.Contains(err.Error(), "not a whole number") {
		t.Errorf("replicas that are no number: %v, want refused", err)
	}
	if _, err := e.Render(e.Newest(), map[string]string{"retention": "1d", "replicas": "1", "storageSize": "1Gi", "storageClass": "x"}, Env{}); err == nil {
		t.Error("a value named storageClass passed: it would hide the environment's")
	}
}

// A render hands out copies: the controller labels what it applies, and that must not
// reach the next render through the decoded CRDs kept between renders.
func TestRenderReturnsCopies(t *testing.T) {
	first := renderMonitoring(t, nil, Env{})
	crd := find(first, "CustomResourceDefinition", "prometheuses.monitoring.coreos.com")
	crd.SetLabels(map[string]string{"changed": "yes"})
	again := find(renderMonitoring(t, nil, Env{}), "CustomResourceDefinition", "prometheuses.monitoring.coreos.com")
	if again.GetLabels()["changed"] != "" {
		t.Error("a change to one render's CRD reached the next render")
	}
}

// Each CRD, as JSON, leaves room under etcd's 1.5 MiB request limit for its metadata and
// managedFields: a regeneration that outgrows it needs maxDescLen in
// hack/update-monitoring-crds.sh.
func TestCRDsFitInEtcd(t *testing.T) {
	for _, o := range renderMonitoring(t, nil, Env{}) {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		data, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 1<<20 {
			t.Errorf("%s is %d bytes as JSON: over 1 MiB", o.GetName(), len(data))
		}
	}
}

func TestRenderFromADirectory(t *testing.T) {
	crd := "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n" +
		"spec:\n  description: 'Written as {{ .name }} in Go templates: not ours.'\n"
	fsys := fstest.MapFS{
		"m/x/1.0.0/a.yaml":           {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\ndata: {v: {{ .v | quote }}, sc: {{ .storageClass | quote }}}\n")},
		"m/x/1.0.0/b/c.yaml":         {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\n---\n")},
		"m/x/1.0.0/crds/w.yaml":      {Data: []byte(crd)},
		"m/x/1.0.0/README.md":        {Data: []byte("{{ not yaml, not read")},
		"m/both/1.0.0.yaml":          {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")},
		"m/both/1.0.0/a.yaml":        {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")},
		"m/bad/1.0.0/crds/cm.yaml":   {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")},
		"m/empty/1.0.0/notes.txt":    {Data: []byte("nothing")},
		"m/single/1.0.0.yaml":        {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\ndata: {v: {{ .v | quote }}}\n")},
		"m/broken/1.0.0/crds/x.yaml": {Data: []byte("kind: [")},
	}
	s := &source{fsys: fsys}
	objs, err := s.render("m/x/1.0.0", map[string]string{"v": "one"}, Env{StorageClass: "fast"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	if want := []string{"a", "c", "widgets.example.com"}; !slices.Equal(names, want) {
		t.Errorf("rendered %v, want %v: every *.yaml, sorted, recursively", names, want)
	}
	if data, _, _ := unstructured.NestedStringMap(objs[0].Object, "data"); data["v"] != "one" || data["sc"] != "fast" {
		t.Errorf("data %v, want the setting and the storage class", data)
	}
	var crdSpec struct{ Description string }
	if err := json.Unmarshal(objs[2].Object["spec"].(json.RawMessage), &crdSpec); err != nil || crdSpec.Description != "Written as {{ .name }} in Go templates: not ours." {
		t.Errorf("crds/ was not read verbatim: description %q (%v)", crdSpec.Description, err)
	}
	// The caller labels what it applies: one render's labels are not in the next one's.
	objs[2].SetLabels(map[string]string{"plugin": "first"})
	again, err := s.render("m/x/1.0.0", map[string]string{"v": "one"}, Env{StorageClass: "fast"})
	if err != nil {
		t.Fatal(err)
	}
	if l := again[2].GetLabels(); l["plugin"] != "" {
		t.Errorf("a definition read verbatim kept the labels of an earlier render: %v", l)
	}

	if objs, err := s.render("m/single/1.0.0", map[string]string{"v": "one"}, Env{}); err != nil || len(objs) != 1 {
		t.Errorf("a version's single file: %v, %v", objs, err)
	}
	if _, err := s.render("m/none/1.0.0", nil, Env{}); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("no manifests: %v, want ErrNotBuilt", err)
	}
	for base, want := range map[string]string{
		"m/both/1.0.0":   "both",
		"m/bad/1.0.0":    "CustomResourceDefinitions only",
		"m/empty/1.0.0":  "no objects",
		"m/broken/1.0.0": "decode m/broken/1.0.0/crds/x.yaml",
	} {
		if _, err := s.render(base, nil, Env{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", base, err, want)
		}
	}
}

func BenchmarkRenderMonitoring(b *testing.B) {
	e := Lookup("monitoring")
	v := e.Newest()
	for b.Loop() {
		if _, err := e.Render(v, v.Values(nil), Env{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeMonitoringCRDs(b *testing.B) {
	e := Lookup("monitoring")
	v := e.Newest()
	for b.Loop() {
		s := &source{fsys: manifests}
		if _, err := s.render("manifests/monitoring/"+v.Version, v.Values(nil), Env{}); err != nil {
			b.Fatal(err)
		}
	}
}
