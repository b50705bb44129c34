package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
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
	objs, err := e.Render(v, v.Values(map[string]string{"image": `evil"\n  hostNetwork: true`}))
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
	if _, err := Lookup("monitoring").Render(Lookup("monitoring").Newest(), nil); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("monitoring: %v, want ErrNotBuilt", err)
	}
}
