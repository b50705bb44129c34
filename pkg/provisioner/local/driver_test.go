package local

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
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
	for name, p := range a {
		if !d2.ports.taken[p] {
			t.Errorf("after a restart, %s port %d of a cluster not started yet is not reserved", name, p)
		}
	}
	b, err := d2.ports.ports(second)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range b {
		if p < portRangeFirst || p >= portRangeFirst+portRangeSize {
			t.Errorf("%s port %d outside %d+%d", name, p, portRangeFirst, portRangeSize)
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

func TestDeleteReleasesPortsAndForgetsTheCluster(t *testing.T) {
	data := t.TempDir()
	d := New(Config{DataDir: data})
	l := d.layout("acme", "gone")
	if err := l.create(); err != nil {
		t.Fatal(err)
	}
	ports, err := d.ports.ports(l)
	if err != nil {
		t.Fatal(err)
	}
	if known, _ := d.Known(); len(known) != 1 || known[0] != "acme/gone" {
		t.Errorf("known clusters %v", known)
	}
	// Deleted without ever running in this process, as after a restart.
	if err := d.Delete(context.Background(), "acme", "gone"); err != nil {
		t.Fatal(err)
	}
	for name, p := range ports {
		if d.ports.taken[p] {
			t.Errorf("%s port %d still reserved after delete", name, p)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "clusters", "acme")); !os.IsNotExist(err) {
		t.Errorf("tenant directory left: %v", err)
	}
	if known, _ := d.Known(); len(known) != 0 {
		t.Errorf("known clusters after delete %v", known)
	}
	if err := d.Delete(context.Background(), "acme", "gone"); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
}

func TestAnEarlierClusterOfTheSameNameIsStale(t *testing.T) {
	d := New(Config{DataDir: t.TempDir()})
	c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: "acme", UID: "new-uid"}}
	l := d.layout("acme", "prod")
	if err := l.create(); err != nil {
		t.Fatal(err)
	}
	if stale := d.staleUID(c); stale != "" {
		t.Errorf("a directory without a uid is stale: %q", stale)
	}
	if err := os.WriteFile(l.uidFile(), []byte("old-uid"), 0o600); err != nil {
		t.Fatal(err)
	}
	if stale := d.staleUID(c); stale != "old-uid" {
		t.Errorf("stale uid %q, want old-uid", stale)
	}
	if err := os.WriteFile(l.uidFile(), []byte("new-uid"), 0o600); err != nil {
		t.Fatal(err)
	}
	if stale := d.staleUID(c); stale != "" {
		t.Errorf("the cluster's own directory is stale: %q", stale)
	}
}

func TestExternalHostIsServed(t *testing.T) {
	for host, bind := range map[string]string{"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "10.0.0.5": "0.0.0.0", "k8s.example.com": "0.0.0.0"} {
		d := New(Config{DataDir: t.TempDir(), ExternalHost: host})
		if got := d.bindAddress(); got != bind {
			t.Errorf("external host %s: kube-apiserver binds %s, want %s", host, got, bind)
		}
		l := d.layout("acme", "prod")
		if err := l.create(); err != nil {
			t.Fatal(err)
		}
		crts, err := loadCerts(l)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeLeafCerts(l, crts, map[string]int{portAPIServer: 6443}, host); err != nil {
			t.Fatal(err)
		}
		pemData, err := os.ReadFile(l.pki("apiserver.crt"))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(pemData)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.VerifyHostname(host); err != nil {
			t.Errorf("kube-apiserver's certificate is not valid for the external host %s: %v", host, err)
		}
	}
}

func TestExpiringCertificatesAreRenewed(t *testing.T) {
	d := New(Config{DataDir: t.TempDir()})
	l := d.layout("acme", "old")
	if err := l.create(); err != nil {
		t.Fatal(err)
	}
	crts, err := loadCerts(l)
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{portAPIServer: 6443}
	// A serving certificate with a week left, as after 51 weeks of uptime.
	if _, err := crts.ca.IssueFiles(filepath.Join(l.dir, "pki"), "apiserver", pki.Request{CommonName: "kube-apiserver", Server: true, TTL: 7 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	inst := &instance{layout: l, ports: ports, certs: crts, components: map[string]*supervisor.Supervised{}}
	c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "acme"}}
	if err := d.renewIfExpiring(c, inst); err != nil {
		t.Fatal(err)
	}
	notAfter, err := pki.NotAfter(l.pki("apiserver.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(notAfter) < 300*24*time.Hour {
		t.Errorf("the certificate was not renewed: expires %s", notAfter)
	}
	// A fresh one is left alone.
	before, _ := os.ReadFile(l.pki("apiserver.crt"))
	if err := d.renewIfExpiring(c, inst); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(l.pki("apiserver.crt")); string(after) != string(before) {
		t.Error("a certificate with a year left was issued again")
	}
}
