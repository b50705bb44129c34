package volumes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/leaktest"
)

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// leftovers returns the goroutines of a provisioner (the library's, the informers', the
// workqueues', the event broadcaster's, this package's) still running.
func leftovers() []string {
	return leaktest.Running("sig-storage-lib-external-provisioner", "csi-lib-utils", "client-go/tools/cache", "client-go/tools/record",
		"client-go/util/workqueue", "apimachinery/pkg/watch", "containerservice/pkg/provisioner/volumes")
}

// TestAProvisionerServesItsCluster runs the library's controller against a fake cluster:
// a claim gets its volume, a Released volume with Delete goes with its directory, one
// with Retain keeps it, a grown claim is expanded, and once stopped nothing of it runs.
func TestAProvisionerServesItsCluster(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	retained := "pvc-81111111-2222-3333-4444-555555555555"
	released := "pvc-91111111-2222-3333-4444-555555555555"
	for _, d := range []string{retained, released} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	client := fake.NewClientset(class(corev1.PersistentVolumeReclaimDelete, storagev1.VolumeBindingImmediate))
	m := NewManager()
	defer m.StopAll()
	if err := m.Ensure("u1", client, root); err != nil {
		t.Fatal(err)
	}

	// A claim of the class, handed to our driver (kube-controller-manager's annotation).
	c := claim(claimUID, "1Gi")
	c.Annotations = map[string]string{"volume.kubernetes.io/storage-provisioner": v1alpha1.CSIDriverName}
	if _, err := client.CoreV1().PersistentVolumeClaims("default").Create(ctx, c, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pv *corev1.PersistentVolume
	waitFor(t, "the claim's volume", func() bool {
		var err error
		pv, err = client.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		return err == nil
	})
	if pv.Annotations["pv.kubernetes.io/provisioned-by"] != v1alpha1.CSIDriverName || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claimUID ||
		pv.Spec.CSI.VolumeHandle != pvName || pv.Spec.NodeAffinity != nil {
		t.Errorf("volume %+v", pv)
	}
	if info, err := os.Stat(filepath.Join(root, pvName)); err != nil || !info.IsDir() {
		t.Errorf("the volume's directory: %v", err)
	}

	// Released volumes: Retain keeps its directory, Delete removes it and the volume.
	// With the library's finalizer off, it takes that finalizer off every volume it
	// looks at: gone from the retained volume, the library has judged it.
	keep := volume(retained, corev1.PersistentVolumeReclaimRetain)
	keep.Finalizers = []string{"external-provisioner.volume.kubernetes.io/finalizer"}
	for _, v := range []*corev1.PersistentVolume{keep, volume(released, corev1.PersistentVolumeReclaimDelete)} {
		v.Status.Phase = corev1.VolumeReleased
		if _, err := client.CoreV1().PersistentVolumes().Create(ctx, v, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the released volume with Delete to go", func() bool {
		_, err := client.CoreV1().PersistentVolumes().Get(ctx, released, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if _, err := os.Stat(filepath.Join(root, released)); !os.IsNotExist(err) {
		t.Errorf("the deleted volume's directory: %v", err)
	}
	waitFor(t, "the library to look at the retained volume", func() bool {
		v, err := client.CoreV1().PersistentVolumes().Get(ctx, retained, metav1.GetOptions{})
		return err == nil && len(v.Finalizers) == 0
	})
	if _, err := os.Stat(filepath.Join(root, retained)); err != nil {
		t.Errorf("a retained volume's directory was removed: %v", err)
	}

	// The claim bound (kube-controller-manager's part), then grown.
	c, _ = client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
	c.Spec.VolumeName = pvName
	if c, _ = client.CoreV1().PersistentVolumeClaims("default").Update(ctx, c, metav1.UpdateOptions{}); c == nil {
		t.Fatal("binding the claim failed")
	}
	c.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		Conditions: []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue}}}
	if c, _ = client.CoreV1().PersistentVolumeClaims("default").UpdateStatus(ctx, c, metav1.UpdateOptions{}); c == nil {
		t.Fatal("binding the claim failed")
	}
	c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("5Gi")
	if _, err := client.CoreV1().PersistentVolumeClaims("default").Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the claim to be expanded", func() bool {
		c, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
		return err == nil && c.Status.Capacity.Storage().String() == "5Gi"
	})
	c, _ = client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
	pv, _ = client.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	if pv.Spec.Capacity.Storage().String() != "5Gi" || c.Status.AllocatedResources.Storage().String() != "5Gi" || len(c.Status.Conditions) != 0 {
		t.Errorf("expanded: volume %v, claim %+v", pv.Spec.Capacity, c.Status)
	}

	if len(leftovers()) == 0 {
		t.Fatal("the check for leftovers sees nothing of a running provisioner")
	}
	m.Stop("u1")
	waitFor(t, "nothing of the provisioner to run", func() bool { return len(leftovers()) == 0 })
}

// TestManagerKeepsOneProvisionerPerCluster checks the bookkeeping with a stand-in run:
// one provisioner per cluster, replaced (the old one ended first) when its client or
// root changes, none left once stopped.
func TestManagerKeepsOneProvisionerPerCluster(t *testing.T) {
	var mu sync.Mutex
	var events []string
	record := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	clients := map[kubernetes.Interface]string{}
	a, b := fake.NewClientset(), fake.NewClientset()
	clients[a], clients[b] = "a", "b"
	m := NewManager()
	m.run = func(ctx context.Context, client kubernetes.Interface, root string) {
		record("start " + clients[client] + " " + root)
		<-ctx.Done()
		record("end " + clients[client] + " " + root)
	}
	seen := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(events) }

	if err := m.Ensure("u1", a, "relative"); err == nil {
		t.Error("a relative volume directory was accepted")
	}
	if err := m.Ensure("", a, "/v"); err == nil {
		t.Error("no cluster UID was accepted")
	}
	for range 3 {
		if err := m.Ensure("u1", a, "/v1/"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the provisioner to start", func() bool { return len(seen()) == 1 })
	if err := m.Ensure("u1", b, "/v1"); err != nil { // credentials rotated
		t.Fatal(err)
	}
	waitFor(t, "the replacement to start", func() bool { return len(seen()) == 3 })
	if err := m.Ensure("u1", b, "/v2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second replacement to start", func() bool { return len(seen()) == 5 })
	want := []string{"start a /v1", "end a /v1", "start b /v1", "end b /v1", "start b /v2"}
	if got := seen(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	m.Stop("u1")
	if got := seen(); len(got) != 6 || got[5] != "end b /v2" {
		t.Fatalf("Stop returned before the provisioner ended: %q", got)
	}
	m.Stop("u1") // nothing runs: no-op

	// Many clusters, concurrently.
	var wg sync.WaitGroup
	for i := range 20 {
		uid := types.UID("c" + string(rune('a'+i)))
		wg.Go(func() {
			_ = m.Ensure(uid, a, "/v")
			_ = m.Ensure(uid, b, "/v")
			if i%2 == 0 {
				m.Stop(uid)
			}
		})
	}
	wg.Wait()
	m.StopAll()
	starts, ends := 0, 0
	for _, e := range seen() {
		if strings.HasPrefix(e, "start") {
			starts++
		} else {
			ends++
		}
	}
	if starts != ends || starts != 3+40 {
		t.Errorf("%d starts and %d ends, want every one of 43 provisioners ended", starts, ends)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.running) != 0 {
		t.Errorf("still running: %v", m.running)
	}
}

// The library registered the core types in client-go's scheme again for every controller
// it made, writing maps that every decode in the process reads: Go ends a process on such
// a race, and the server decodes all the time. third_party carries the library patched;
// with the unpatched one, the race detector fails this test.
func TestStartingProvisionersLeavesTheSchemeAlone(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _, _ = scheme.Scheme.ObjectKinds(&corev1.Pod{})
			_, _ = scheme.Scheme.New(corev1.SchemeGroupVersion.WithKind("PersistentVolume"))
		}
	})
	m := NewManager()
	for i := range 3 {
		if err := m.Ensure(types.UID(fmt.Sprint("u", i)), fake.NewClientset(), t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three provision controllers running", func() bool {
		n := 0
		for _, g := range leftovers() {
			if strings.Contains(g, "(*ProvisionController).Run") {
				n++
			}
		}
		return n >= 3
	})
	close(stop)
	wg.Wait()
	m.StopAll()
	if err := m.Ensure("u9", fake.NewClientset(), t.TempDir()); err == nil {
		t.Error("a provisioner started after StopAll")
	}
}
