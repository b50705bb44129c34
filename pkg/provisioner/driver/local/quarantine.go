package local

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
)

// quarantineNote is the file in a quarantined directory that says where it came from and why.
const quarantineNote = "quarantine.json"

func (d *Driver) quarantineDir() string { return filepath.Join(d.cfg.DataDir, "quarantine") }

// quarantined returns the quarantined directory of the cluster with that UID, or "".
func (d *Driver) quarantined(uid string) string {
	if uid == "" {
		return ""
	}
	dir := filepath.Join(d.quarantineDir(), uid)
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

// Held lists the clusters that have a directory, with whether any of their processes runs.
func (d *Driver) Held() ([]provisioner.Held, error) {
	dirs, err := filepath.Glob(filepath.Join(d.cfg.DataDir, "clusters", "*", "*"))
	if err != nil {
		return nil, err
	}
	held := make([]provisioner.Held, 0, len(dirs))
	for _, dir := range dirs {
		name := filepath.Base(dir)
		if info, err := os.Stat(dir); err != nil || !info.IsDir() || strings.Contains(name, ".") {
			continue // not a cluster's (names are DNS labels); a directory being made has a dot
		}
		l := layout{dir: dir}
		uid, err := l.uid()
		if err != nil {
			return nil, err
		}
		held = append(held, provisioner.Held{Namespace: filepath.Base(filepath.Dir(dir)), Name: name, UID: uid, Running: running(l)})
	}
	return held, nil
}

// Quarantine moves a control plane no Cluster accounts for into the quarantine,
// unless it runs.
func (d *Driver) Quarantine(_ context.Context, h provisioner.Held) (string, error) {
	inst, err := d.lockInstance(h.Namespace + "/" + h.Name)
	if err != nil {
		return "", err
	}
	defer inst.mu.Unlock()
	if inst.certs.Load() != nil {
		return "", fmt.Errorf("%s is run by this server for the cluster with uid %s", inst.key, inst.uid)
	}
	// The instance was only made to hold the lock.
	defer d.forget(inst)
	l := d.layout(h.Namespace, h.Name)
	if _, err := os.Stat(l.dir); os.IsNotExist(err) {
		return "", nil
	}
	owner, err := l.uid()
	if err != nil {
		return "", err
	}
	if owner != h.UID {
		return "", fmt.Errorf("%s now belongs to uid %q, not %q", l.dir, owner, h.UID)
	}
	if running(l) {
		return "", provisioner.ErrRunning
	}
	return d.moveToQuarantine(l, h, "no Cluster with its UID exists")
}

// moveToQuarantine moves the directory, whole, under the quarantine: by UID, so that its
// Cluster finds it again, or by name and time when the UID is unknown. Its ports stay
// reserved. It returns the new place.
func (d *Driver) moveToQuarantine(l layout, h provisioner.Held, reason string) (string, error) {
	name := h.UID
	if name == "" {
		name = "unknown"
	}
	if h.UID == "" || d.quarantined(h.UID) != "" {
		name = fmt.Sprintf("%s-%s-%s-%d", name, h.Namespace, h.Name, time.Now().UnixNano())
	}
	dest := filepath.Join(d.quarantineDir(), name)
	if err := os.MkdirAll(d.quarantineDir(), 0o700); err != nil {
		return "", err
	}
	note, _ := json.MarshalIndent(map[string]string{
		"namespace": h.Namespace, "name": h.Name, "uid": h.UID, "from": l.dir,
		"reason": reason, "time": time.Now().UTC().Format(time.RFC3339),
	}, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(l.dir, quarantineNote), note, 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(l.dir, dest); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", l.dir, err)
	}
	_ = os.Remove(filepath.Dir(l.dir))
	klog.InfoS("Quarantined a control plane no Cluster accounts for; nothing was deleted", "cluster", h.Namespace+"/"+h.Name, "uid", h.UID, "to", dest, "reason", reason)
	return dest, nil
}
