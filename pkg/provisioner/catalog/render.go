package catalog

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/template"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// manifests are the add-ons' objects, one template per type and version
// (manifests/<type>/<version>.yaml), rendered with the version's settings.
//
//go:embed manifests
var manifests embed.FS

// ErrNotBuilt says an entry's version has no manifests in this binary yet.
var ErrNotBuilt = errors.New("not built yet")

// Render returns the objects of a type's version with the given settings' values (all of
// them: Values fills in the defaults). Values are quoted with the template function
// quote, so a setting cannot add YAML of its own.
func (e *Entry) Render(v *Version, values map[string]string) ([]*unstructured.Unstructured, error) {
	path := "manifests/" + e.Type + "/" + v.Version + ".yaml"
	text, err := manifests.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", e.Type, v.Version, ErrNotBuilt)
	}
	tmpl, err := template.New(path).Option("missingkey=error").Funcs(template.FuncMap{"quote": strconv.Quote}).Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, values); err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(&out, 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if obj.GetKind() == "" || obj.GetName() == "" {
			return nil, fmt.Errorf("%s: an object without kind or name", path)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}
