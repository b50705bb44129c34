package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

func TestEnsureExplainsMissingBinariesAndVersions(t *testing.T) {
	bin := t.TempDir()
	d := New(Config{DataDir: t.TempDir(), BinDirs: map[string]string{"v1.37.1": bin}})
	c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: "acme"}, Spec: v1alpha1.ClusterSpec{Version: "v1.37.1"}}

	_, err := d.Ensure(context.Background(), c)
	var permanent *provisioner.PermanentError
	if !errors.As(err, &permanent) || !strings.Contains(err.Error(), "etcd for Kubernetes v1.37.1 is missing") || !strings.Contains(err.Error(), "hack/kube-binaries.sh") {
		t.Errorf("missing binaries: %v", err)
	}

	c.Spec.Version = "v1.30.0"
	_, err = d.Ensure(context.Background(), c)
	if !errors.As(err, &permanent) || !strings.Contains(err.Error(), "no binaries for Kubernetes v1.30.0 (it has v1.37.1)") {
		t.Errorf("unknown version: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.cfg.DataDir, "clusters")); !os.IsNotExist(err) {
		t.Errorf("a failed start left a directory: %v", err)
	}
}

func TestPortsSurviveRestartsAndNeverCollide(t *testing.T) {
	data := t.TempDir()
	d := New(Config{DataDir: data})
	first := layout{dir: filepath.Join(data, "clusters", "acme", "a")}
	if err := first.create(); err != nil {
		t.Fatal(err)
	}
	a, err := d.ports.ports(first)
	if err != nil {
		t.Fatal(err)
	}

	// A new driver (a restarted server) reserves a's ports before handing out any.
	d2 := New(Config{DataDir: data})
	second := layout{dir: filepath.Join(data, "clusters", "acme", "b")}
	if err := second.create(); err != nil {
		t.Fatal(err)
	}
	b, err := d2.ports.ports(second)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range a {
		seen[p] = true
	}
	for name, p := range b {
		if seen[p] {
			t.Errorf("port %d (%s) given to two clusters", p, name)
		}
	}
	again, err := d2.ports.ports(first)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range a {
		if again[name] != p {
			t.Errorf("%s port changed across restarts: %d then %d", name, p, again[name])
		}
	}
}
