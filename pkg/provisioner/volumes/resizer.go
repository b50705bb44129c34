package volumes

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// resizer expands the volumes of our driver. kube-controller-manager's expand controller
// hands a grown claim of a CSI driver to an external resizer (the annotation
// volume.kubernetes.io/storage-resizer) and waits. A volume here is a directory without a
// size of its own, and no kubelet mounts it, so expanding is recording the new size: on
// the PersistentVolume, then on the claim's status, with no step on the node.
type resizer struct {
	client  kubernetes.Interface
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	queue   workqueue.TypedRateLimitingInterface[string]
	synced  []cache.InformerSynced
}

func newResizer(client kubernetes.Interface, claims coreinformers.PersistentVolumeClaimInformer, volumes coreinformers.PersistentVolumeInformer) (*resizer, error) {
	r := &resizer{client: client, claims: claims.Lister(), volumes: volumes.Lister(),
		synced: []cache.InformerSynced{claims.Informer().HasSynced, volumes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "volume-expansion"})}
	if _, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueue,
		UpdateFunc: func(_, obj any) { r.enqueue(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watch claims for expansion: %w", err)
	}
	return r, nil
}

// growing tells whether a bound claim asks for more than it has.
func growing(c *corev1.PersistentVolumeClaim) bool {
	want, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]
	have := c.Status.Capacity[corev1.ResourceStorage]
	return ok && c.Spec.VolumeName != "" && c.Status.Phase == corev1.ClaimBound && want.Cmp(have) > 0
}

func (r *resizer) enqueue(obj any) {
	if c, ok := obj.(*corev1.PersistentVolumeClaim); ok && growing(c) {
		r.queue.Add(cache.MetaObjectToName(c).String())
	}
}

// run expands claims until ctx ends.
func (r *resizer) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, r.queue.ShutDown)
	defer stop()
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		return
	}
	for {
		key, shutdown := r.queue.Get()
		if shutdown {
			return
		}
		if err := r.resize(ctx, key); err != nil {
			klog.FromContext(ctx).Error(err, "Expanding a volume failed", "claim", key)
			r.queue.AddRateLimited(key)
		} else {
			r.queue.Forget(key)
		}
		r.queue.Done(key)
	}
}

// resize records the claim's new size on its volume, then on the claim, if the volume is
// one of ours bound to that very claim.
func (r *resizer) resize(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	claim, err := r.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !growing(claim)) {
		return nil
	}
	if err != nil {
		return err
	}
	pv, err := r.volumes.Get(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != v1alpha1.CSIDriverName || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claim.UID {
		return nil // not ours, or not bound to this claim
	}
	want := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if have := pv.Spec.Capacity[corev1.ResourceStorage]; have.Cmp(want) < 0 {
		pv = pv.DeepCopy()
		if pv.Spec.Capacity == nil {
			pv.Spec.Capacity = corev1.ResourceList{}
		}
		pv.Spec.Capacity[corev1.ResourceStorage] = want
		if _, err := r.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("record the new size of volume %s: %w", pv.Name, err)
		}
	}
	claim = claim.DeepCopy()
	if claim.Status.Capacity == nil {
		claim.Status.Capacity = corev1.ResourceList{}
	}
	if claim.Status.AllocatedResources == nil {
		claim.Status.AllocatedResources = corev1.ResourceList{}
	}
	claim.Status.Capacity[corev1.ResourceStorage] = want
	claim.Status.AllocatedResources[corev1.ResourceStorage] = want
	delete(claim.Status.AllocatedResourceStatuses, corev1.ResourceStorage)
	conditions := claim.Status.Conditions[:0]
	for _, c := range claim.Status.Conditions {
		if c.Type != corev1.PersistentVolumeClaimResizing && c.Type != corev1.PersistentVolumeClaimFileSystemResizePending {
			conditions = append(conditions, c)
		}
	}
	claim.Status.Conditions = conditions
	if _, err := r.client.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, claim, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("record the new size of claim %s: %w", key, err)
	}
	klog.FromContext(ctx).Info("Expanded a volume", "claim", key, "volume", pv.Name, "size", want.String())
	return nil
}
