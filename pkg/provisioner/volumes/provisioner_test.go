package volumes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

const (
	claimUID = "0b6b1f6e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"
	pvName   = "pvc-" + claimUID
)

func class(reclaim corev1.PersistentVolumeReclaimPolicy, binding storagev1.VolumeBindingMode) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.CSIStorageClassName}, Provisioner: v1alpha1.CSIDriverName,
		ReclaimPolicy: &reclaim, VolumeBindingMode: &binding}
}

func claim(uid, size string) *corev1.PersistentVolumeClaim {
	className := v1alpha1.CSIStorageClassName
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", UID: types.UID(uid)},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &className,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
}

// volume is a PersistentVolume of our driver, as Provision makes it (handle = name).
func volume(name string, reclaim corev1.PersistentVolumeReclaimPolicy) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": v1alpha1.CSIDriverName}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              v1alpha1.CSIStorageClassName,
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: v1alpha1.CSIDriverName, VolumeHandle: name,
			}},
		},
	}
}

func TestProvision(t *testing.T) {
	root := t.TempDir()
	client := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{corev1.LabelHostname: "host-1"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}},
	)
	p := &provisioner{client: client, root: root}
	ctx := context.Background()

	// Waiting for the first consumer: bound to its node, by hostname.
	pv, state, err := p.Provision(ctx, controller.ProvisionOptions{StorageClass: class(corev1.PersistentVolumeReclaimRetain, storagev1.VolumeBindingWaitForFirstConsumer),
		PVName: pvName, PVC: claim(claimUID, "3Gi"), SelectedNodeName: "n1"})
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("provision: %v %v", state, err)
	}
	if info, err := os.Lstat(filepath.Join(root, pvName)); err != nil || !info.IsDir() || info.Mode().Perm() != 0o700 {
		t.Fatalf("volume directory: %v %v, want a private directory", info, err)
	}
	size := pv.Spec.Capacity[corev1.ResourceStorage]
	if pv.Name != pvName || pv.Spec.CSI == nil || pv.Spec.CSI.Driver != v1alpha1.CSIDriverName || pv.Spec.CSI.VolumeHandle != pvName ||
		size.String() != "3Gi" || len(pv.Spec.AccessModes) != 1 || pv.Spec.AccessModes[0] != corev1.ReadWriteOnce ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || pv.Spec.StorageClassName != v1alpha1.CSIStorageClassName ||
		pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("volume %+v", pv.Spec)
	}
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		t.Fatalf("no node affinity for a volume made for node n1")
	}
	req := pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0]
	if req.Key != corev1.LabelHostname || req.Operator != corev1.NodeSelectorOpIn || len(req.Values) != 1 || req.Values[0] != "host-1" {
		t.Errorf("node affinity %+v, want kubernetes.io/hostname in [host-1]", req)
	}
	// Asked again (its PersistentVolume could not be saved): the same volume.
	if _, _, err := p.Provision(ctx, controller.ProvisionOptions{StorageClass: class(corev1.PersistentVolumeReclaimDelete, storagev1.VolumeBindingImmediate),
		PVName: pvName, PVC: claim(claimUID, "3Gi")}); err != nil {
		t.Errorf("provisioning again: %v", err)
	}

	// A node without a hostname label: its name. Binding at once: no node at all.
	pv, _, err = p.Provision(ctx, controller.ProvisionOptions{StorageClass: class(corev1.PersistentVolumeReclaimDelete, storagev1.VolumeBindingWaitForFirstConsumer),
		PVName: "pvc-11111111-2222-3333-4444-555555555555", PVC: claim("11111111-2222-3333-4444-555555555555", "1Gi"), SelectedNodeName: "n2"})
	if err != nil || pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != "n2" {
		t.Errorf("a node without a hostname label: %v %v", pv, err)
	}
	pv, _, err = p.Provision(ctx, controller.ProvisionOptions{StorageClass: class(corev1.PersistentVolumeReclaimDelete, storagev1.VolumeBindingImmediate),
		PVName: "pvc-21111111-2222-3333-4444-555555555555", PVC: claim("21111111-2222-3333-4444-555555555555", "1Gi")})
	if err != nil || pv.Spec.NodeAffinity != nil || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("binding at once: %v %v, want no node affinity", pv, err)
	}

	// What it refuses, making nothing.
	block := claim("31111111-2222-3333-4444-555555555555", "1Gi")
	blockMode := corev1.PersistentVolumeBlock
	block.Spec.VolumeMode = &blockMode
	foreign := class(corev1.PersistentVolumeReclaimDelete, storagev1.VolumeBindingImmediate)
	foreign.Provisioner = "other.csi.example.com"
	cases := map[string]struct {
		opts  controller.ProvisionOptions
		want  string
		state controller.ProvisioningState
	}{
		"block": {controller.ProvisionOptions{StorageClass: class(corev1.PersistentVolumeReclaimDelete, storagev1.VolumeBindingImmediate),
			PVName: "pvc-31111111-2222-3333-4444-555555555555", PVC: block}, "raw block device", controller.ProvisioningFinished},
		"another driver's class": {controller.ProvisionOptions{StorageClass: foreign, PVName: "pvc-31111111-2222-3333-4444-555555555555",
			PVC: claim("31111111-2222-3333-4444-555555555555", "1Gi")}, "ignored", controller.ProvisioningFinished},
		"a name of another form": {controller.ProvisionOptions{StorageClass: class(corev1.PersistentVolumeReclaimDelete, storagev1.VolumeBindingImmediate),
			PVName: "../etcd", PVC: claim("31111111-2222-3333-4444-555555555555", "1Gi")}, "not of the form", controller.ProvisioningFinished},
		"a node that is gone": {controller.ProvisionOptions{StorageClass: class(corev1.PersistentVolumeReclaimDelete, storagev1.VolumeBindingWaitForFirstConsumer),
			PVName: "pvc-31111111-2222-3333-4444-555555555555", PVC: claim("31111111-2222-3333-4444-555555555555", "1Gi"), SelectedNodeName: "gone"},
			"is gone", controller.ProvisioningReschedule},
	}
	for name, c := range cases {
		if _, state, err := p.Provision(ctx, c.opts); err == nil || !strings.Contains(err.Error(), c.want) || state != c.state {
			t.Errorf("%s: %v %v, want %s and an error containing %q", name, state, err, c.state, c.want)
		}
	}
	var ignored *controller.IgnoredError
	if _, _, err := p.Provision(ctx, cases["another driver's class"].opts); !errors.As(err, &ignored) {
		t.Errorf("another driver's class: %v, want IgnoredError", err)
	}
	if _, err := os.Stat(filepath.Join(root, "pvc-31111111-2222-3333-4444-555555555555")); !os.IsNotExist(err) {
		t.Errorf("a refused claim got a directory: %v", err)
	}
}

// TestDeleteRemovesOnlyItsOwnVolumes: PersistentVolumes are the tenant's to write; none
// of them makes Delete remove anything but a volume directory of ours.
func TestDeleteRemovesOnlyItsOwnVolumes(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "clusters", "acme", "prod", "volumes")
	etcd := filepath.Join(base, "clusters", "acme", "prod", "etcd")
	for _, d := range []string{root, etcd} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(etcd, "db"), []byte("the cluster's data"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &provisioner{root: root}
	ctx := context.Background()

	symlinked := "pvc-41111111-2222-3333-4444-555555555555"
	if err := os.Symlink(etcd, filepath.Join(root, symlinked)); err != nil {
		t.Fatal(err)
	}
	file := "pvc-51111111-2222-3333-4444-555555555555"
	if err := os.WriteFile(filepath.Join(root, file), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mine := "pvc-61111111-2222-3333-4444-555555555555"
	if err := os.Mkdir(filepath.Join(root, mine), 0o700); err != nil {
		t.Fatal(err)
	}

	withHandle := func(name, handle string) *corev1.PersistentVolume {
		pv := volume(name, corev1.PersistentVolumeReclaimDelete)
		pv.Spec.CSI.VolumeHandle = handle
		return pv
	}
	foreign := volume(mine, corev1.PersistentVolumeReclaimDelete)
	foreign.Spec.CSI.Driver = "other.csi.example.com"
	hostPath := volume(mine, corev1.PersistentVolumeReclaimDelete)
	hostPath.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: etcd}}
	attacks := map[string]*corev1.PersistentVolume{
		"traversal":                    withHandle("pvc-71111111-2222-3333-4444-555555555555", "../etcd"),
		"traversal named so":           withHandle("../etcd", "../etcd"),
		"traversal behind a good name": withHandle(mine, mine+"/../../etcd"),
		"an absolute path":             withHandle("pvc-71111111-2222-3333-4444-555555555555", etcd),
		"an absolute path named so":    withHandle(etcd, etcd),
		"another volume's handle":      withHandle("pvc-71111111-2222-3333-4444-555555555555", mine),
		"a symbolic link out of root":  volume(symlinked, corev1.PersistentVolumeReclaimDelete),
		"a file":                       volume(file, corev1.PersistentVolumeReclaimDelete),
		"another driver":               foreign,
		"not a CSI volume":             hostPath,
	}
	for name, pv := range attacks {
		if err := p.Delete(ctx, pv); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
	if data, err := os.ReadFile(filepath.Join(etcd, "db")); err != nil || string(data) != "the cluster's data" {
		t.Fatalf("the directory outside the volumes was touched: %q %v", data, err)
	}
	for _, name := range []string{symlinked, file, mine} {
		if _, err := os.Lstat(filepath.Join(root, name)); err != nil {
			t.Errorf("%s was removed by a refused delete: %v", name, err)
		}
	}

	// Its own volume goes, contents and all, a link inside it removed, not followed.
	if err := os.Symlink(etcd, filepath.Join(root, mine, "link")); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, volume(mine, corev1.PersistentVolumeReclaimDelete)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root, mine)); !os.IsNotExist(err) {
		t.Errorf("the volume is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(etcd, "db")); err != nil {
		t.Errorf("deleting a volume followed a link out of it: %v", err)
	}
	if err := p.Delete(ctx, volume(mine, corev1.PersistentVolumeReclaimDelete)); err != nil {
		t.Errorf("deleting a volume already gone: %v", err)
	}
}

// TestAClusterCannotFillThePlatformsDisk: volumes are directories on the management side;
// past the limit a new claim gets none, and the error says why, while one asked for again
// (its directory made before) is still given.
func TestAClusterCannotFillThePlatformsDisk(t *testing.T) {
	root := t.TempDir()
	p := &provisioner{client: fake.NewClientset(), root: root, max: 2}
	ctx := context.Background()
	immediate := class(corev1.PersistentVolumeReclaimRetain, storagev1.VolumeBindingImmediate)
	uids := []string{claimUID, "11111111-2222-3333-4444-555555555555", "21111111-2222-3333-4444-555555555555"}
	for _, uid := range uids[:2] {
		if _, _, err := p.Provision(ctx, controller.ProvisionOptions{StorageClass: immediate, PVName: "pvc-" + uid, PVC: claim(uid, "1Gi")}); err != nil {
			t.Fatalf("volume %s: %v", uid, err)
		}
	}
	_, state, err := p.Provision(ctx, controller.ProvisionOptions{StorageClass: immediate, PVName: "pvc-" + uids[2], PVC: claim(uids[2], "1Gi")})
	if err == nil || !strings.Contains(err.Error(), "the most") || state != controller.ProvisioningFinished {
		t.Errorf("a volume past the limit: %v %v, want refused naming the limit", state, err)
	}
	if _, err := os.Stat(filepath.Join(root, "pvc-"+uids[2])); !os.IsNotExist(err) {
		t.Errorf("a refused claim got a directory: %v", err)
	}
	if _, _, err := p.Provision(ctx, controller.ProvisionOptions{StorageClass: immediate, PVName: "pvc-" + uids[0], PVC: claim(uids[0], "1Gi")}); err != nil {
		t.Errorf("a volume asked for again at the limit: %v", err)
	}
	// A volume deleted makes room: the claim that waited gets its volume.
	if err := p.Delete(ctx, volume("pvc-"+uids[0], corev1.PersistentVolumeReclaimDelete)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Provision(ctx, controller.ProvisionOptions{StorageClass: immediate, PVName: "pvc-" + uids[2], PVC: claim(uids[2], "1Gi")}); err != nil {
		t.Errorf("a claim that waited, once a volume was deleted: %v", err)
	}
}
