// Package volumes makes the csi add-on real: it gives every PersistentVolumeClaim of the
// add-on's driver a volume, a directory in the cluster's volume directory on the
// management side. Nothing of it runs inside the user cluster (the local driver's nodes
// are kwok's and run no CSI node plugin), so the provisioning protocol is driven from
// here, by the Kubernetes external-provisioner library, against the cluster's API.
//
// The PersistentVolumes it reads live in the user cluster, where a tenant may create and
// edit them: nothing a PersistentVolume says is trusted to name a path. Delete removes
// only a directory that Provision could have made, directly in the volume directory.
package volumes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// volumeName is the name of every volume: the library names a claim's volume
// "pvc-<claim UID>", and a UID is a UUID. A name of this form is a plain name: no
// separator, no dot, nothing that leaves the volume directory.
var volumeName = regexp.MustCompile(`^pvc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// provisioner makes and removes the volumes of one cluster, each a directory of root.
// It implements the library's Provisioner; the library decides when (a claim of our
// class to bind, a Released volume whose reclaim policy is Delete).
type provisioner struct {
	client kubernetes.Interface
	// root is the cluster's volume directory, absolute and clean.
	root string
	// max bounds the volumes of the cluster (0: MaxVolumes).
	max int
}

// MaxVolumes bounds the volumes of one cluster, retained ones included: every volume is a
// directory on the management side, and a tenant who creates claims in a loop must not
// use up the platform's disk (its inodes) for every other tenant. A claim beyond it waits,
// its Events saying why, until volumes are deleted.
const MaxVolumes = 1000

var _ controller.Provisioner = &provisioner{}

// Provision makes the claim's volume directory and returns its PersistentVolume: a CSI
// volume of our driver whose handle is its name, the claim's size, access modes and
// volume mode, the class's reclaim policy, and, for a class that waits for the first
// consumer, bound to the node the scheduler chose.
func (p *provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	class, claim := opts.StorageClass, opts.PVC
	if class == nil || class.Provisioner != v1alpha1.CSIDriverName {
		return nil, controller.ProvisioningFinished, &controller.IgnoredError{Reason: "the class is not of " + v1alpha1.CSIDriverName}
	}
	if !volumeName.MatchString(opts.PVName) {
		return nil, controller.ProvisioningFinished, fmt.Errorf("volume name %q is not of the form pvc-<claim UID>", opts.PVName)
	}
	if claim.Spec.VolumeMode != nil && *claim.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return nil, controller.ProvisioningFinished, fmt.Errorf("%s offers filesystem volumes only: the claim asks for a raw block device", v1alpha1.CSIDriverName)
	}
	if claim.Spec.Selector != nil {
		return nil, controller.ProvisioningFinished, errors.New("a claim with a selector cannot be provisioned: a provisioned volume has no labels to match")
	}
	if claim.Spec.DataSource != nil || claim.Spec.DataSourceRef != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("%s cannot fill a volume from a data source", v1alpha1.CSIDriverName)
	}
	size, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok || size.Sign() <= 0 {
		return nil, controller.ProvisioningFinished, errors.New("the claim requests no storage size")
	}
	affinity, state, err := p.nodeAffinity(ctx, opts.SelectedNodeName)
	if err != nil {
		return nil, state, err
	}
	dir := filepath.Join(p.root, opts.PVName)
	if err := p.room(dir); err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, controller.ProvisioningFinished, fmt.Errorf("create volume %s: %w", opts.PVName, err)
	}
	// Asked again for one made before (its PersistentVolume could not be saved): it
	// must still be a directory of ours.
	if info, err := os.Lstat(dir); err != nil || !info.IsDir() {
		return nil, controller.ProvisioningFinished, fmt.Errorf("volume %s: %s is not a directory (%v)", opts.PVName, dir, err)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	mode := corev1.PersistentVolumeFilesystem
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: opts.PVName},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			MountOptions:                  class.MountOptions,
			VolumeMode:                    &mode,
			NodeAffinity:                  affinity,
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver:       v1alpha1.CSIDriverName,
				VolumeHandle: opts.PVName,
			}},
		},
	}
	klog.FromContext(ctx).Info("Provisioned a volume", "claim", klog.KObj(claim), "volume", opts.PVName, "size", size.String(), "node", opts.SelectedNodeName)
	return pv, controller.ProvisioningFinished, nil
}

// room refuses a new volume when the cluster has MaxVolumes already (a volume asked for
// again, its directory made before, is no new one).
func (p *provisioner) room(dir string) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	limit := p.max
	if limit == 0 {
		limit = MaxVolumes
	}
	f, err := os.Open(p.root)
	if err != nil {
		return fmt.Errorf("count the volumes in %s: %w", p.root, err)
	}
	defer f.Close()
	// Reading stops at the limit: a claim that waits costs little at each retry.
	names, err := f.Readdirnames(limit)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("count the volumes in %s: %w", p.root, err)
	}
	if len(names) >= limit {
		return fmt.Errorf("the cluster has the most volumes %s keeps for one cluster (%d, retained ones included): delete claims whose volumes go with them, "+
			"or set persistentVolumeReclaimPolicy Delete on Released volumes no longer needed; a retained volume whose PersistentVolume was deleted counts until the cluster is deleted",
			v1alpha1.CSIDriverName, limit)
	}
	return nil
}

// nodeAffinity binds a volume to the node the scheduler chose for its first consumer
// (none when the class binds at once), by the node's hostname label as kube-scheduler
// matches it, or its name when it has none. A chosen node that is gone is given back to
// the scheduler to choose again (ProvisioningReschedule), before anything is made.
func (p *provisioner) nodeAffinity(ctx context.Context, nodeName string) (*corev1.VolumeNodeAffinity, controller.ProvisioningState, error) {
	if nodeName == "" {
		return nil, controller.ProvisioningFinished, nil
	}
	node, err := p.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, controller.ProvisioningReschedule, fmt.Errorf("the selected node %s is gone", nodeName)
	}
	if err != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("read the selected node %s: %w", nodeName, err)
	}
	hostname := node.Labels[corev1.LabelHostname]
	if hostname == "" {
		hostname = node.Name
	}
	return &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{hostname}}},
	}}}}, controller.ProvisioningFinished, nil
}

// Delete removes a volume's directory. The PersistentVolume is the tenant's to write, so
// it is refused, with nothing removed, unless it is a CSI volume of our driver whose
// handle is its own name of the form Provision makes, and that names a real directory
// (not a symbolic link) directly in the volume directory. A directory already gone is
// no error: the volume is deleted.
func (p *provisioner) Delete(ctx context.Context, pv *corev1.PersistentVolume) error {
	logger := klog.FromContext(ctx)
	dir, err := p.volumeDir(pv)
	if err != nil {
		logger.Info("Refused to delete a volume", "volume", pv.Name, "err", err)
		return err
	}
	info, err := os.Lstat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("delete volume %s: %w", pv.Name, err)
	case !info.IsDir():
		// Made by nobody here: Provision makes directories only.
		err := fmt.Errorf("refusing to delete volume %s: %s is not a directory", pv.Name, dir)
		logger.Info("Refused to delete a volume", "volume", pv.Name, "err", err)
		return err
	}
	// RemoveAll never follows a symbolic link inside the volume: it removes the link.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete volume %s: %w", pv.Name, err)
	}
	logger.Info("Deleted a volume", "volume", pv.Name)
	return nil
}

// volumeDir returns the directory of a PersistentVolume of ours, or why it is not one.
func (p *provisioner) volumeDir(pv *corev1.PersistentVolume) (string, error) {
	csi := pv.Spec.CSI
	if csi == nil || csi.Driver != v1alpha1.CSIDriverName {
		return "", fmt.Errorf("refusing to delete volume %s: it is not a volume of %s", pv.Name, v1alpha1.CSIDriverName)
	}
	if csi.VolumeHandle != pv.Name || !volumeName.MatchString(csi.VolumeHandle) {
		return "", fmt.Errorf("refusing to delete volume %s: its handle %q is not one %s made", pv.Name, csi.VolumeHandle, v1alpha1.CSIDriverName)
	}
	dir := filepath.Join(p.root, csi.VolumeHandle)
	if filepath.Dir(dir) != p.root {
		return "", fmt.Errorf("refusing to delete volume %s: %s is not in %s", pv.Name, dir, p.root)
	}
	return dir, nil
}
