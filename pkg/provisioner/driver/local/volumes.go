package local

import (
	"errors"
	"fmt"
	"os"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

var _ provisioner.Volumes = &Driver{}

// VolumeDir returns the directory of the cluster's volumes, inside its own directory,
// creating it if missing. Only a control plane this driver runs for that very UID has
// one: the directory is never made for a cluster that is not prepared (that would make
// a cluster directory with no owner), nor in the directory of another cluster of the
// same name. The cluster's lock is held, so a deletion or quarantine never races it.
func (d *Driver) VolumeDir(c *v1alpha1.Cluster) (string, error) {
	inst, err := d.lockInstance(key(c))
	if err != nil {
		return "", err
	}
	defer inst.mu.Unlock()
	if inst.certs.Load() == nil {
		// The instance was only made to hold the lock.
		d.forget(inst)
		return "", fmt.Errorf("the volumes of %s: the cluster's control plane is not running yet", key(c))
	}
	if inst.uid != string(c.UID) {
		return "", fmt.Errorf("the volumes of %s: the directory belongs to the cluster with uid %s, not %s", key(c), inst.uid, c.UID)
	}
	dir := inst.layout.volumes()
	// Mkdir, not MkdirAll: a cluster directory that is gone is never made again here.
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create the volume directory of %s: %w", key(c), err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("the volume directory of %s: %w", key(c), err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("the volume directory of %s, %s, is not a directory", key(c), dir)
	}
	return dir, nil
}
