package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

func TestCatalogIsSound(t *testing.T) {
	if err := validateCatalog(entries); err != nil {
		t.Fatal(err)
	}
	bad := []Entry{{Type: "x", Versions: []Version{{Version: "2.0.0"}, {Version: "1.0.0"}}}}
	if err := validateCatalog(bad); err == nil {
		t.Error("descending versions passed")
	}
	bad = []Entry{{Type: "x", Versions: []Version{{Version: "1.0.0", Settings: []Setting{{Name: "n", Kind: Int, Max: bound(3), Default: "4"}}}}}}
	if err := validateCatalog(bad); err == nil {
		t.Error("a default out of range passed")
	}
	// The render environment's keys are no setting's: the one would hide the other.
	bad = []Entry{{Type: "x", Versions: []Version{{Version: "1.0.0", Settings: []Setting{{Name: "storageClass", Kind: String, Default: "fast"}}}}}}
	if err := validateCatalog(bad); err == nil || !strings.Contains(err.Error(), "storageClass") {
		t.Errorf("a setting named storageClass: %v, want refused", err)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	v := Lookup("monitoring").Newest()
	fld := field.NewPath("spec", "config")
	cases := map[string]struct {
		config map[string]string
		want   string
	}{
		"valid":          {map[string]string{"retention": "30d", "storageSize": "20Gi", "replicas": "3"}, ""},
		"unknown key":    {map[string]string{"retension": "30d"}, `spec.config[retension]: Unsupported value: "retension"`},
		"wrong type":     {map[string]string{"replicas": "two"}, "spec.config[replicas]: Invalid value: \"two\": must be a whole number"},
		"out of range":   {map[string]string{"replicas": "4"}, "spec.config[replicas]: Invalid value: \"4\": must be at most 3"},
		"too small":      {map[string]string{"storageSize": "100Mi"}, "spec.config[storageSize]: Invalid value: \"100Mi\": must be at least 1Gi"},
		"not a duration": {map[string]string{"retention": "15 days"}, "spec.config[retention]"},
	}
	for name, c := range cases {
		errs := v.Validate(c.config, fld)
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", name, errs)
		case c.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want)):
			t.Errorf("%s: got %v, want one error containing %q", name, errs, c.want)
		}
	}
	if errs := Lookup("csi").Newest().Validate(map[string]string{"reclaimPolicy": "Recycle", "default": "yes"}, fld); len(errs) != 2 {
		t.Errorf("csi: %v, want two errors", errs)
	}
}

func TestResolveAndValues(t *testing.T) {
	e := Lookup("csi")
	if v, err := e.Resolve(""); err != nil || v != e.Newest() {
		t.Errorf("no version: %v %v, want the newest", v, err)
	}
	if v, err := e.Resolve("v" + e.Newest().Version); err != nil || v != e.Newest() {
		t.Errorf("a version with a v: %v %v", v, err)
	}
	if _, err := e.Resolve("9.9.9"); err == nil || !strings.Contains(err.Error(), e.Newest().Version) {
		t.Errorf("an unknown version: %v, want the versions listed", err)
	}
	values := e.Newest().Values(map[string]string{"default": "true"})
	if values["default"] != "true" || values["reclaimPolicy"] != "Delete" {
		t.Errorf("values %v: want the given one and the defaults", values)
	}
	if Lookup("logging") != nil {
		t.Error("logging is in the catalog, but nothing makes it real")
	}
}

// TestReadmeListsTheCatalog keeps the README's table of add-ons and settings true.
func TestReadmeListsTheCatalog(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	for _, e := range Entries() {
		v := e.Newest()
		if !strings.Contains(text, "| `"+e.Type+"` | "+v.Version+" |") {
			t.Errorf("README.md does not list %s %s", e.Type, v.Version)
		}
		for _, s := range v.Settings {
			if !strings.Contains(text, "| `"+s.Name+"` |") || !strings.Contains(text, "| `"+s.Default+"` |") {
				t.Errorf("README.md does not list %s's setting %s with its default %s", e.Type, s.Name, s.Default)
			}
		}
	}
}

func TestRenderGPUDevicePlugin(t *testing.T) {
	e := Lookup("gpu-device-plugin")
	v := e.Newest()
	if errs := v.Validate(map[string]string{"image": "a b"}, field.NewPath("spec", "config")); len(errs) != 1 {
		t.Errorf("an image with a space: %v, want refused", errs)
	}
	// Past admission's pattern, a value still cannot add YAML.
	objs, err := e.Render(v, v.Values(map[string]string{"image": `evil"\n  hostNetwork: true`}), Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].GetKind() != "DaemonSet" || objs[0].GetNamespace() != "kube-system" {
		t.Fatalf("rendered %v, want the DaemonSet in kube-system", objs)
	}
	containers, _, _ := unstructured.NestedSlice(objs[0].Object, "spec", "template", "spec", "containers")
	if image := containers[0].(map[string]any)["image"]; image != `evil"\n  hostNetwork: true` {
		t.Errorf("image %q: a setting must stay one string", image)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(objs[0].Object, "spec", "template", "spec", "hostNetwork"); found {
		t.Error("a setting added a field")
	}
}

// TestRenderCSI: the csi add-on is a CSIDriver that needs no attachment and a
// StorageClass of that driver, its policy, binding mode and default-ness from the
// settings, each setting one string.
func TestRenderCSI(t *testing.T) {
	e := Lookup("csi")
	v := e.Newest()
	cases := map[string]struct {
		config                          map[string]string
		isDefault, reclaim, bindingMode string
	}{
		"defaults": {nil, "false", "Delete", "WaitForFirstConsumer"},
		"set":      {map[string]string{"default": "true", "reclaimPolicy": "Retain", "volumeBindingMode": "Immediate"}, "true", "Retain", "Immediate"},
	}
	for name, c := range cases {
		if errs := v.Validate(c.config, field.NewPath("spec", "config")); len(errs) > 0 {
			t.Fatalf("%s: %v", name, errs)
		}
		objs, err := e.Render(v, v.Values(c.config), Env{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(objs) != 2 {
			t.Fatalf("%s: rendered %d objects, want a CSIDriver and a StorageClass", name, len(objs))
		}
		var driver storagev1.CSIDriver
		var class storagev1.StorageClass
		for _, o := range []struct {
			obj  *unstructured.Unstructured
			kind string
			into any
		}{{objs[0], "CSIDriver", &driver}, {objs[1], "StorageClass", &class}} {
			if o.obj.GetAPIVersion() != "storage.k8s.io/v1" || o.obj.GetKind() != o.kind {
				t.Fatalf("%s: %s %s, want storage.k8s.io/v1 %s", name, o.obj.GetAPIVersion(), o.obj.GetKind(), o.kind)
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.obj.Object, o.into, true); err != nil {
				t.Fatalf("%s: %s: %v", name, o.kind, err)
			}
		}
		if driver.Name != v1alpha1.CSIDriverName || driver.Spec.AttachRequired == nil || *driver.Spec.AttachRequired ||
			driver.Spec.PodInfoOnMount == nil || *driver.Spec.PodInfoOnMount ||
			len(driver.Spec.VolumeLifecycleModes) != 1 || driver.Spec.VolumeLifecycleModes[0] != storagev1.VolumeLifecyclePersistent {
			t.Errorf("%s: CSIDriver %+v", name, driver)
		}
		if class.Name != v1alpha1.CSIStorageClassName || class.Provisioner != v1alpha1.CSIDriverName ||
			class.Annotations["storageclass.kubernetes.io/is-default-class"] != c.isDefault ||
			class.ReclaimPolicy == nil || string(*class.ReclaimPolicy) != c.reclaim ||
			class.VolumeBindingMode == nil || string(*class.VolumeBindingMode) != c.bindingMode ||
			class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion {
			t.Errorf("%s: StorageClass %+v", name, class)
		}
	}

	// Past admission, a value still cannot add YAML.
	objs, err := e.Render(v, v.Values(map[string]string{"reclaimPolicy": "Delete\nparameters: {root: /}"}), Env{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(objs[1].Object, "parameters"); found {
		t.Error("a setting added a field")
	}
}
