package volumes

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// TestResizerExpandsOnlyItsOwnBoundVolumes: a grown claim whose volume is ours and bound
// to it is expanded; one whose volume is another driver's, or bound to another claim, is
// left alone.
func TestResizerExpandsOnlyItsOwnBoundVolumes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	bound := func(name, uid, volumeName string) *corev1.PersistentVolumeClaim {
		c := claim(uid, "4Gi")
		c.Name, c.Spec.VolumeName = name, volumeName
		c.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
		return c
	}
	pv := func(name, claimUID string) *corev1.PersistentVolume {
		v := volume(name, corev1.PersistentVolumeReclaimDelete)
		v.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "x", UID: types.UID(claimUID)}
		return v
	}
	foreign := pv("pvc-b1111111-2222-3333-4444-555555555555", "u-foreign")
	foreign.Spec.CSI.Driver = "other.csi.example.com"
	client := fake.NewClientset(
		bound("ours", "u-ours", "pvc-a1111111-2222-3333-4444-555555555555"), pv("pvc-a1111111-2222-3333-4444-555555555555", "u-ours"),
		bound("foreign", "u-foreign", foreign.Name), foreign,
		bound("stolen", "u-stolen", "pvc-c1111111-2222-3333-4444-555555555555"), pv("pvc-c1111111-2222-3333-4444-555555555555", "u-other"),
	)
	factory := informers.NewSharedInformerFactory(client, 0)
	r, err := newResizer(client, factory.Core().V1().PersistentVolumeClaims(), factory.Core().V1().PersistentVolumes())
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer func() { cancel(); factory.Shutdown() }()
	factory.WaitForCacheSync(ctx.Done())

	for _, name := range []string{"ours", "foreign", "stolen"} {
		if err := r.resize(ctx, "default/"+name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	capacity := func(claim, volume string) (string, string) {
		c, _ := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, claim, metav1.GetOptions{})
		v, _ := client.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{})
		return c.Status.Capacity.Storage().String(), v.Spec.Capacity.Storage().String()
	}
	if c, v := capacity("ours", "pvc-a1111111-2222-3333-4444-555555555555"); c != "4Gi" || v != "4Gi" {
		t.Errorf("our volume: claim %s, volume %s, want both 4Gi", c, v)
	}
	if c, v := capacity("foreign", foreign.Name); c != "1Gi" || v != "1Gi" {
		t.Errorf("another driver's volume: claim %s, volume %s, want untouched", c, v)
	}
	if c, v := capacity("stolen", "pvc-c1111111-2222-3333-4444-555555555555"); c != "1Gi" || v != "1Gi" {
		t.Errorf("a volume bound to another claim: claim %s, volume %s, want untouched", c, v)
	}
}
