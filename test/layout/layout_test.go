// Package layout checks the shape of the tree: the README's layout lists every package
// under pkg/ (and nothing that is gone), and imports point downward only, so that a
// newcomer can read the architecture from the tree and the next change cannot quietly
// make a controller depend on a driver or the proxy on a controller.
package layout

import (
	"bufio"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/ucloudstack/containerservice"

// layers orders the tree from the bottom up: a package may import packages of lower
// layers only, and within its own layer only what lies below its own directory, except
// in the groups that share listed at the end. The longest prefix decides a package's
// layer; cmd/ and test/ are above everything and no package of pkg/ imports them.
var layers = []struct {
	prefix string
	layer  int
	// shared: packages of this prefix may import each other (one API, one registry).
	shared bool
}{
	{"pkg/apis", 0, true},
	{"pkg/generated", 1, true},
	{"pkg/leaktest", 0, false},
	{"pkg/provisioner/atomicfile", 2, false},
	{"pkg/provisioner/front", 2, false},
	{"pkg/provisioner/pki", 3, false},
	{"pkg/provisioner/catalog", 2, false},
	{"pkg/provisioner/volumes", 2, false},
	{"pkg/provisioner/supervisor", 3, false},
	{"pkg/registry/table", 2, false},
	{"pkg/registry/specstatus", 2, false},
	{"pkg/proxy/authn", 4, false},
	{"pkg/provisioner", 4, false},
	{"pkg/provisioner/reconciler", 5, false},
	{"pkg/provisioner/clusterclient", 5, false},
	{"pkg/provisioner/usercluster", 5, false},
	{"pkg/proxy", 5, false},
	{"pkg/provisioner/controllers", 6, false},
	{"pkg/provisioner/driver", 6, false},
	{"pkg/registry/containerservice", 7, true},
	{"pkg/registry/apiserver", 8, false},
}

func layerOf(pkg string) (prefix string, layer int, shared, ok bool) {
	best := -1
	for i, l := range layers {
		if (pkg == l.prefix || strings.HasPrefix(pkg, l.prefix+"/")) && (best < 0 || len(l.prefix) > len(layers[best].prefix)) {
			best = i
		}
	}
	if best < 0 {
		return "", 0, false, false
	}
	return layers[best].prefix, layers[best].layer, layers[best].shared, true
}

// ourPackages maps each package of the module under pkg/ to the module's packages it
// imports (test files included), as the go command sees them.
func ourPackages(t *testing.T, root string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}`, "./pkg/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		name := strings.TrimPrefix(fields[0], module+"/")
		var ours []string
		for _, imp := range fields[1:] {
			if rel, found := strings.CutPrefix(imp, module+"/"); found && rel != name {
				ours = append(ours, rel)
			}
		}
		pkgs[name] = ours
	}
	return pkgs
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestImportsPointDownward(t *testing.T) {
	for pkg, imports := range ourPackages(t, repoRoot(t)) {
		if strings.HasPrefix(pkg, "pkg/generated/") {
			continue // generated code imports what its generator decides
		}
		prefix, layer, shared, ok := layerOf(pkg)
		if !ok {
			t.Errorf("%s has no layer: add it to the layers of test/layout", pkg)
			continue
		}
		for _, imp := range imports {
			if !strings.HasPrefix(imp, "pkg/") {
				t.Errorf("%s imports %s: nothing under pkg/ may import cmd/ or test/", pkg, imp)
				continue
			}
			impPrefix, impLayer, _, ok := layerOf(imp)
			switch {
			case !ok:
				t.Errorf("%s imports %s, which has no layer", pkg, imp)
			case impLayer < layer:
			case impLayer == layer && (strings.HasPrefix(imp, pkg+"/") || (shared && impPrefix == prefix)):
			default:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports point downward only", pkg, layer, imp, impLayer)
			}
		}
	}
}

// readmeLayout returns the first word of each line of the README's layout block.
func readmeLayout(t *testing.T, root string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []string
	inLayout, inBlock := false, false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Layout"):
			inLayout = true
		case inLayout && line == "```":
			if inBlock {
				return entries
			}
			inBlock = true
		case inBlock:
			if fields := strings.Fields(line); len(fields) > 0 && !strings.HasPrefix(line, " ") {
				entries = append(entries, strings.TrimSuffix(fields[0], "/"))
			}
		}
	}
	t.Fatal("README.md has no layout block (a line starting Layout, then a fenced block)")
	return nil
}

// lists reports whether a README entry names pkg: exactly, as a tree (x/...), or with
// <kind> standing for one directory.
func lists(entry, pkg string) bool {
	if tree, ok := strings.CutSuffix(entry, "/..."); ok {
		return pkg == tree || strings.HasPrefix(pkg, tree+"/")
	}
	if !strings.Contains(entry, "<") {
		return entry == pkg
	}
	pattern := strings.NewReplacer("<kind>", "*").Replace(entry)
	matched, _ := path.Match(pattern, pkg)
	return matched
}

func TestReadmeListsEveryPackage(t *testing.T) {
	root := repoRoot(t)
	entries := readmeLayout(t, root)
	pkgs := ourPackages(t, root)
	var names []string
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)
	used := map[string]bool{}
	for _, p := range names {
		found := false
		for _, e := range entries {
			if lists(e, p) {
				found, used[e] = true, true
			}
		}
		if !found {
			t.Errorf("README.md's layout does not list %s", p)
		}
	}
	for _, e := range entries {
		if strings.HasPrefix(e, "pkg/") && !used[e] {
			t.Errorf("README.md's layout lists %s, which is no package", e)
		}
	}
}
