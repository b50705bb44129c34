package catalog

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// manifests are the add-ons' objects, for each type and version either one template
// (manifests/<type>/<version>.yaml) or a directory of them (manifests/<type>/<version>/),
// rendered with the version's settings. A directory's crds/ holds generated
// CustomResourceDefinitions, read as they are.
//
//go:embed manifests
var manifests embed.FS

// embedded renders from the manifests built into the binary.
var embedded = &source{fsys: manifests}

// ErrNotBuilt says an entry's version has no manifests in this binary yet.
var ErrNotBuilt = errors.New("not built yet")

// Env is what a render knows of the cluster beyond the Plugin's own settings.
type Env struct {
	// StorageClass is the csi add-on's StorageClass when the cluster has that add-on enabled, else "".
	StorageClass string
}

// values returns the template data Env fills in. validateCatalog refuses a setting
// named as one of its keys: the one would shadow the other.
func (env Env) values() map[string]string {
	return map[string]string{"storageClass": env.StorageClass}
}

// data is what a template sees: the settings' values and the environment's.
func (env Env) data(values map[string]string) (map[string]string, error) {
	data := make(map[string]string, len(values)+1)
	for k, v := range values {
		data[k] = v
	}
	for k, v := range env.values() {
		if _, taken := data[k]; taken {
			return nil, fmt.Errorf("a setting named %s collides with the render environment's", k)
		}
		data[k] = v
	}
	return data, nil
}

// Render returns the objects of a type's version with the given settings' values (all of
// them: Values fills in the defaults) in the cluster env describes. Templates insert
// values with the function quote, so a setting cannot add YAML of its own, or with int,
// which writes a whole number or fails (a count such as replicas must be a number, and a
// quoted one is a string the API refuses). The caller may change an object's metadata.
// Of an object read verbatim (a definition), every other top-level field is the encoded
// JSON, a json.RawMessage shared between renders: the object is for encoding (applying,
// digesting), not for reading into or deep-copying, which would panic.
func (e *Entry) Render(v *Version, values map[string]string, env Env) ([]*unstructured.Unstructured, error) {
	objs, err := embedded.render("manifests/"+e.Type+"/"+v.Version, values, env)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", e.Type, v.Version, err)
	}
	return objs, nil
}

// source is a tree of manifests, with what it read verbatim kept encoded: the monitoring
// CRDs are megabytes of YAML, rendered at every apply of a Plugin of the type. Decoded
// into maps they held ~10 MiB of the server's heap for good (twice that in memory with
// the collector's headroom); kept as compact JSON they hold 2.5 MB and cost no decoding.
type source struct {
	fsys     fs.FS
	verbatim sync.Map // file path → []*unstructured.Unstructured, never changed once stored
}

// verbatimDir is the subdirectory of a version's directory whose files are not templates:
// generated CRDs, whose descriptions may hold "{{" (Go templates in the upstream docs).
const verbatimDir = "crds"

// render renders base.yaml or every *.yaml under base/ (sorted, recursively), whichever
// exists.
func (s *source) render(base string, values map[string]string, env Env) ([]*unstructured.Unstructured, error) {
	data, err := env.data(values)
	if err != nil {
		return nil, err
	}
	file, fileErr := fs.Stat(s.fsys, base+".yaml")
	dir, dirErr := fs.Stat(s.fsys, base)
	isFile := fileErr == nil && file.Mode().IsRegular()
	isDir := dirErr == nil && dir.IsDir()
	switch {
	case isFile && isDir:
		return nil, fmt.Errorf("both %s.yaml and %s/ exist: a version's manifests are one or the other", base, base)
	case isFile:
		return s.renderTemplate(base+".yaml", data)
	case !isDir:
		return nil, ErrNotBuilt
	}
	var objs []*unstructured.Unstructured
	// WalkDir visits in lexical order, so a render is the same every time.
	err = fs.WalkDir(s.fsys, base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".yaml" {
			return nil
		}
		var got []*unstructured.Unstructured
		if strings.HasPrefix(p, base+"/"+verbatimDir+"/") {
			got, err = s.readVerbatim(p)
		} else {
			got, err = s.renderTemplate(p, data)
		}
		objs = append(objs, got...)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		// Rendering nothing would make a Plugin Ready with nothing in the cluster.
		return nil, fmt.Errorf("%s/ has no objects", base)
	}
	return objs, nil
}

// renderTemplate executes one template file and decodes the result.
func (s *source) renderTemplate(p string, data map[string]string) ([]*unstructured.Unstructured, error) {
	text, err := fs.ReadFile(s.fsys, p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	tmpl, err := template.New(p).Option("missingkey=error").Funcs(funcs).Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", p, err)
	}
	return decode(p, &out)
}

// funcs are the templates' functions: the only ways a value gets into a manifest.
var funcs = template.FuncMap{
	"quote": strconv.Quote,
	"int": func(s string) (int64, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", s)
		}
		return n, nil
	},
}

// readVerbatim reads a file that is no template, once. Every call returns objects whose
// metadata is the caller's to change (the plugin controller labels what it applies) and
// whose other fields are the cached ones, shared: the apiVersion and kind as strings, the
// rest (a definition's spec) as its JSON.
func (s *source) readVerbatim(p string) ([]*unstructured.Unstructured, error) {
	cached, ok := s.verbatim.Load(p)
	if !ok {
		f, err := s.fsys.Open(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		defer f.Close()
		objs, err := decode(p, f)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if o.GetKind() != "CustomResourceDefinition" {
				return nil, fmt.Errorf("%s: %s %s in %s/, which holds CustomResourceDefinitions only", p, o.GetKind(), o.GetName(), verbatimDir)
			}
			for k, v := range o.Object {
				if k == "apiVersion" || k == "kind" || k == "metadata" {
					continue
				}
				data, err := json.Marshal(v)
				if err != nil {
					return nil, fmt.Errorf("encode %s of %s in %s: %w", k, o.GetName(), p, err)
				}
				o.Object[k] = json.RawMessage(data)
			}
		}
		cached, _ = s.verbatim.LoadOrStore(p, objs)
	}
	objs := cached.([]*unstructured.Unstructured)
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		obj := maps.Clone(o.Object)
		if m, ok := obj["metadata"]; ok {
			obj["metadata"] = runtime.DeepCopyJSONValue(m)
		}
		out[i] = &unstructured.Unstructured{Object: obj}
	}
	return out, nil
}

// decode reads every YAML document of r as an object; empty documents are skipped.
// Objects are decoded as unstructured.Unstructured decodes JSON, so whole numbers are
// int64 (a replicas field reads with NestedInt64) rather than float64.
func decode(p string, r io.Reader) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("decode %s: %w", p, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue
		}
		// Checked first: unstructured's own error for a missing kind quotes the whole object.
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, fmt.Errorf("decode %s: %w", p, err)
		}
		if head.Kind == "" || head.Metadata.Name == "" {
			return nil, fmt.Errorf("%s: an object without kind or name", p)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("decode %s: %w", p, err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}
