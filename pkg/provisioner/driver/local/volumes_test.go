package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestVolumesLiveAndGoWithTheCluster: a cluster's volumes are inside its directory, made
// only for the UID the control plane runs for, moved into the quarantine and back with
// it, and removed with it.
func TestVolumesLiveAndGoWithTheCluster(t *testing.T) {
	data := t.TempDir()
	d, err := New(Config{FrontBinary: someFront(t), DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	c := cluster("prod", "u1")
	if _, err := d.VolumeDir(c); err == nil {
		t.Error("a cluster that is not prepared got a volume directory")
	}
	if _, err := os.Stat(d.layout("acme", "prod").dir); !os.IsNotExist(err) {
		t.Fatalf("asking for the volumes of a cluster not prepared made its directory: %v", err)
	}

	inst := prepared(t, d, c)
	dir, err := d.VolumeDir(c)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(inst.layout.dir, "volumes") {
		t.Errorf("volume directory %s, want it inside the cluster's directory %s", dir, inst.layout.dir)
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() || info.Mode().Perm() != 0o700 {
		t.Fatalf("volume directory: %v %v, want a private directory", info, err)
	}
	if again, err := d.VolumeDir(c); err != nil || again != dir {
		t.Errorf("asked again: %s %v", again, err)
	}
	if _, err := d.VolumeDir(cluster("prod", "u2")); err == nil {
		t.Error("another cluster of the same name got the first one's volumes")
	}
	volume := filepath.Join(dir, "pvc-0b6b1f6e-3c1d-4e5f-8a9b-0c1d2e3f4a5b")
	if err := os.Mkdir(volume, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(volume, "data"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A restarted server that sees no Cluster quarantines the directory, volumes included.
	d.Shutdown()
	d = newDriver(t, Config{FrontBinary: someFront(t), DataDir: data})
	held, err := d.Held()
	if err != nil || len(held) != 1 {
		t.Fatalf("held: %v %v", held, err)
	}
	dest, err := d.Quarantine(context.Background(), held[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "volumes", filepath.Base(volume), "data")); err != nil || string(got) != "kept" {
		t.Fatalf("the quarantine lacks the volume: %q %v", got, err)
	}

	// The Cluster comes back: so do its volumes.
	prepared(t, d, c)
	if got, err := os.ReadFile(filepath.Join(volume, "data")); err != nil || string(got) != "kept" {
		t.Fatalf("the volume did not come back: %q %v", got, err)
	}

	// Deleted with the cluster's data.
	if err := d.Delete(context.Background(), "acme", "prod", "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the volumes outlived their cluster: %v", err)
	}
	if _, err := d.VolumeDir(c); err == nil {
		t.Error("a deleted cluster got a volume directory")
	}
	if _, err := os.Stat(d.layout("acme", "prod").dir); !os.IsNotExist(err) {
		t.Errorf("asking for the volumes of a deleted cluster made its directory again: %v", err)
	}
}
