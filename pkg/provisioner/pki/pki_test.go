package pki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestACAIsNeverLeftWithoutItsKey plays a crash between the files of a new CA (a
// rotation, say): whatever the step, the next load finds a certificate with its own key.
func TestACAIsNeverLeftWithoutItsKey(t *testing.T) {
	dir := t.TempDir()
	old, err := LoadOrCreateCA(dir, "client-ca")
	if err != nil {
		t.Fatal(err)
	}
	oldCrt, _ := os.ReadFile(filepath.Join(dir, "client-ca.crt"))
	oldKey, _ := os.ReadFile(filepath.Join(dir, "client-ca.key"))
	rotated, err := CreateCA(dir, "client-ca")
	if err != nil {
		t.Fatal(err)
	}

	// The crash: the pair was replaced, the key too, the certificate not yet.
	if err := os.WriteFile(filepath.Join(dir, "client-ca.crt"), oldCrt, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOrCreateCA(dir, "client-ca")
	if err != nil {
		t.Fatalf("load after a crash mid-rotation: %v", err)
	}
	if got.Fingerprint() != rotated.Fingerprint() || got.Fingerprint() == old.Fingerprint() {
		t.Error("the CA after the crash is not the rotated one")
	}
	crt, _ := os.ReadFile(filepath.Join(dir, "client-ca.crt"))
	if string(crt) != string(rotated.CertPEM()) {
		t.Error("client-ca.crt was not restored from the pair")
	}
	if _, _, err := got.Issue(Request{CommonName: "x", Client: true}); err != nil {
		t.Errorf("the restored CA cannot sign: %v", err)
	}

	// The other order: only the key file is old.
	if err := os.WriteFile(filepath.Join(dir, "client-ca.key"), oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadOrCreateCA(dir, "client-ca"); err != nil || got.Fingerprint() != rotated.Fingerprint() {
		t.Errorf("load with a stale key file: %v", err)
	}
	if _, err := loadCA(filepath.Join(dir, "client-ca.crt"), filepath.Join(dir, "client-ca.key")); err != nil {
		t.Errorf("the key file was not restored: %v", err)
	}
}

// TestACAWrittenBeforePairsIsKept: clusters made before pair files existed keep their CAs.
func TestACAWrittenBeforePairsIsKept(t *testing.T) {
	dir := t.TempDir()
	ca, err := CreateCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "ca.pair")); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOrCreateCA(dir, "ca")
	if err != nil || got.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("an old CA was replaced: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.pair")); err != nil {
		t.Errorf("no pair written for the old CA: %v", err)
	}

	// Without a pair, a certificate whose key is another's cannot be trusted: an error,
	// never a new CA that would silently invalidate every credential.
	other, _ := CreateCA(t.TempDir(), "other")
	_ = other
	os.Remove(filepath.Join(dir, "ca.pair"))
	otherKey, _ := os.ReadFile(filepath.Join(filepath.Dir(other.CertFile), "other.key"))
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(dir, "ca"); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("a mismatched certificate and key: %v, want an error", err)
	}
}

// TestACAIsNeverReplacedWhenPartlyThere: only a CA of which nothing exists is created;
// a certificate without its key is an error, not a reason to make a new CA that would
// silently invalidate every credential the old one signed.
func TestACAIsNeverReplacedWhenPartlyThere(t *testing.T) {
	dir := t.TempDir()
	if _, err := CreateCA(dir, "ca"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.pair", "ca.key"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadOrCreateCA(dir, "ca"); err == nil {
		t.Error("a CA whose key is gone was replaced instead of refused")
	}
}
