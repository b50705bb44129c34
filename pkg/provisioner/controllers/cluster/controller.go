// Package cluster drives Clusters: it guards them with a finalizer, asks the
// driver to make their control plane exist and run, puts the platform's objects into the
// cluster, and reports phase, endpoints and a condition per component through the status
// subresource. It is level-triggered: each pass compares the object with what the driver
// observes, so it resumes wherever a restart left it. A control plane's data is deleted
// only with proof that its Cluster (that UID) was deleted; data nothing accounts for is
// quarantined (sweep.go).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	informers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions/containerservice/v1alpha1"
	listers "github.com/ucloudstack/containerservice/pkg/generated/listers/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/clusterclient"
	"github.com/ucloudstack/containerservice/pkg/provisioner/reconciler"
	"github.com/ucloudstack/containerservice/pkg/provisioner/usercluster"
)

// Name is the controller's name in metrics and logs.
const Name = "cluster"

const (
	// Health is re-checked this often while a cluster is coming up for the first time
	// (each moment lost is the tenant's wait), while it is unwell, and once it is Ready.
	pollFirstStart = 500 * time.Millisecond
	// firstStartWithin bounds the quick looks: a cluster that has not come up by then is
	// unwell, and looked at as one.
	firstStartWithin = 2 * time.Minute
	pollUnready      = 2 * time.Second
	pollReady        = 15 * time.Second
	// rebootstrapEvery is how often the platform's objects in a user cluster are applied
	// again, which repairs whatever someone changed inside.
	rebootstrapEvery = 5 * time.Minute
)

// Controller reconciles Clusters with a driver.
type Controller struct {
	*reconciler.Controller
	client   versioned.Interface
	lister   listers.ClusterLister
	nodes    listers.NodeLister
	driver   provisioner.Driver
	recorder record.EventRecorder
	// bootstrap applies the platform's objects into a user cluster (a variable for tests).
	bootstrap func(ctx context.Context, client kubernetes.Interface, c *v1alpha1.Cluster) error
	// usable says what a workload still waits for in a user cluster (a variable for tests).
	usable func(ctx context.Context, client kubernetes.Interface) (string, error)
	// clients reach inside user clusters as the platform manager, one per cluster.
	clients *clusterclient.Cache

	mu sync.Mutex
	// deleted holds the UIDs of Clusters whose deletion the informer delivered: the proof
	// that lets their data go. A Cluster merely missing from the cache (an empty or wrong
	// etcd, a restored backup) is no proof.
	deleted map[string]types.UID
	// bootstrapped is the generation applied in each cluster, and when.
	bootstrapped map[types.UID]applied
	// warned holds the unaccounted running control planes already reported.
	warned map[string]bool
}

type applied struct {
	generation int64
	at         time.Time
}

// New returns a controller over the shared informers' Clusters and Nodes (a cluster
// counts its nodes and runs their agent only while it has some).
func New(client versioned.Interface, informer informers.ClusterInformer, nodes informers.NodeInformer, driver provisioner.Driver, recorder record.EventRecorder) (*Controller, error) {
	c := &Controller{
		client: client, lister: informer.Lister(), nodes: nodes.Lister(), driver: driver, recorder: recorder, bootstrap: usercluster.Apply, usable: usercluster.Usable,
		clients: clusterclient.New(driver, provisioner.PlatformManager),
		deleted: map[string]types.UID{}, bootstrapped: map[types.UID]applied{}, warned: map[string]bool{},
	}
	c.Controller = reconciler.New(Name, c, informer.Informer().HasSynced, nodes.Informer().HasSynced)
	_, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.Enqueue,
		UpdateFunc: func(_, obj any) { c.Enqueue(obj) },
		DeleteFunc: c.onDelete,
	})
	if err != nil {
		return nil, err
	}
	// A node added, removed or changing phase changes its cluster's counts.
	_, err = nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueNodeCluster,
		UpdateFunc: func(old, obj any) {
			o, n := old.(*v1alpha1.Node), obj.(*v1alpha1.Node)
			if o.Status.Phase != n.Status.Phase {
				c.enqueueNodeCluster(obj)
			}
		},
		DeleteFunc: c.enqueueNodeCluster,
	})
	return c, err
}

func (c *Controller) enqueueNodeCluster(obj any) {
	if n, ok := reconciler.Object[*v1alpha1.Node](obj); ok {
		c.EnqueueKey(n.Namespace + "/" + n.Spec.ClusterName)
	}
}

// nodeCounts counts the cluster's Nodes and those Ready.
func (c *Controller) nodeCounts(cl *v1alpha1.Cluster) (v1alpha1.NodeCounts, error) {
	all, err := c.nodes.Nodes(cl.Namespace).List(labels.Everything())
	if err != nil {
		return v1alpha1.NodeCounts{}, err
	}
	var counts v1alpha1.NodeCounts
	for _, n := range all {
		if n.Spec.ClusterName != cl.Name {
			continue
		}
		counts.Total++
		if n.Status.Phase == v1alpha1.NodeReady {
			counts.Ready++
		}
	}
	return counts, nil
}

// onDelete remembers the UID of a Cluster the API server deleted. A tombstone (the
// informer missed the deletion and found the object gone on a relist) proves nothing.
func (c *Controller) onDelete(obj any) {
	if cl, ok := obj.(*v1alpha1.Cluster); ok {
		c.mu.Lock()
		c.deleted[cl.Namespace+"/"+cl.Name] = cl.UID
		c.mu.Unlock()
	}
	c.Enqueue(obj)
}

// Run reconciles with the given number of workers, follows the driver's changes and
// sweeps for unaccounted control planes until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	go c.Controller.Run(ctx, workers)
	if !c.WaitForSync(ctx) {
		return
	}
	go c.sweepEvery(ctx)
	for {
		select {
		case key := <-c.driver.Changes():
			c.EnqueueKey(key)
		case <-ctx.Done():
			return
		}
	}
}

// Reconcile brings one Cluster a step closer to what it asks for.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.lister.Clusters(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, c.deleteProven(ctx, key, ns, name)
	}
	if err != nil {
		return 0, err
	}
	cl := cached.DeepCopy()
	c.mu.Lock()
	earlier, replaced := c.deleted[key]
	c.mu.Unlock()
	if replaced && earlier != cl.UID {
		// The name was deleted and created again before this pass: the earlier
		// Cluster's control plane goes first.
		if err := c.deleteProven(ctx, key, ns, name); err != nil {
			return 0, err
		}
	}
	if cl.DeletionTimestamp != nil {
		return 0, c.finalize(ctx, cl)
	}
	if !slices.Contains(cl.Finalizers, v1alpha1.ClusterFinalizer) {
		cl.Finalizers = append(cl.Finalizers, v1alpha1.ClusterFinalizer)
		_, err := c.client.ContainerserviceV1alpha1().Clusters(ns).Update(ctx, cl, metav1.UpdateOptions{})
		return 0, err // the update brings the cluster back through the queue
	}
	return c.ensure(ctx, cl)
}

// deleteProven deletes the control plane of a Cluster that is gone, if its deletion was
// seen (its finalizer was removed by hand, say); otherwise its data, if any, is left to
// the sweep, which quarantines it.
func (c *Controller) deleteProven(ctx context.Context, key, ns, name string) error {
	c.mu.Lock()
	uid, proven := c.deleted[key]
	c.mu.Unlock()
	if !proven {
		return nil
	}
	if err := c.driver.Delete(ctx, ns, name, string(uid)); err != nil {
		return fmt.Errorf("delete the control plane of %s: %w", key, err)
	}
	c.mu.Lock()
	if c.deleted[key] == uid {
		delete(c.deleted, key)
	}
	delete(c.bootstrapped, uid)
	c.mu.Unlock()
	return nil
}

// finalize tears down the control plane of a Cluster being deleted and lets it go.
func (c *Controller) finalize(ctx context.Context, cl *v1alpha1.Cluster) error {
	if !slices.Contains(cl.Finalizers, v1alpha1.ClusterFinalizer) {
		return nil
	}
	api := c.client.ContainerserviceV1alpha1().Clusters(cl.Namespace)
	var err error
	if cl.Status.Phase != v1alpha1.ClusterDeleting {
		cl.Status.Phase = v1alpha1.ClusterDeleting
		if cl, err = api.UpdateStatus(ctx, cl, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	// The cluster's Nodes and Plugins go with it: they describe parts of this cluster only.
	selector := metav1.ListOptions{FieldSelector: "spec.clusterName=" + cl.Name}
	if err := c.client.ContainerserviceV1alpha1().Nodes(cl.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, selector); err != nil {
		return fmt.Errorf("delete the nodes of %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	if err := c.client.ContainerserviceV1alpha1().Plugins(cl.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, selector); err != nil {
		return fmt.Errorf("delete the plugins of %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	if err := c.driver.Delete(ctx, cl.Namespace, cl.Name, string(cl.UID)); err != nil {
		return fmt.Errorf("delete the control plane of %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	c.recorder.Event(cl, corev1.EventTypeNormal, "ControlPlaneDeleted", "The control plane's processes are stopped and its data removed")
	cl.Finalizers = slices.DeleteFunc(cl.Finalizers, func(f string) bool { return f == v1alpha1.ClusterFinalizer })
	if _, err := api.Update(ctx, cl, metav1.UpdateOptions{}); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.bootstrapped, cl.UID)
	c.mu.Unlock()
	c.clients.Forget(cl.UID)
	return nil
}

// ensure runs the driver, rotates credentials when asked, applies the platform's objects,
// and reports what it found.
func (c *Controller) ensure(ctx context.Context, cl *v1alpha1.Cluster) (time.Duration, error) {
	obs, ensureErr := c.driver.Ensure(ctx, cl)
	rotated := false
	var applyErr error // what failed after the control plane was observed
	if ensureErr == nil {
		if token := cl.Annotations[v1alpha1.RotateCredentialsAnnotation]; token != "" && token != cl.Status.CredentialsRotation {
			// Idempotent per token: a retry after a failed status write rotates nothing.
			if err := c.driver.RotateCredentials(ctx, cl, token); err != nil {
				applyErr = &stepError{reason: "RotationFailed", err: fmt.Errorf("rotate credentials: %w", err)}
			} else {
				rotated = true
				c.recorder.Eventf(cl, corev1.EventTypeNormal, "CredentialsRotated", "Replaced the client CA for %s=%s: every credential issued before is refused", v1alpha1.RotateCredentialsAnnotation, token)
				// Report the components as they are now, restarting, not as they were.
				obs, ensureErr = c.driver.Ensure(ctx, cl)
			}
		}
	}
	if ensureErr == nil && applyErr == nil && obs.Components[provisioner.APIServer].Healthy {
		if err := c.bootstrapIfDue(ctx, cl); err != nil {
			applyErr = &stepError{reason: "BootstrapFailed", err: err}
		} else if !defaultsSeen(cl) && obs.Ready() {
			// Ready means a workload can be applied now, not only that the processes
			// answer: until a new cluster first has them, what a pod needs is waited for.
			applyErr = c.waitUsable(ctx, cl)
		}
	}
	counts, err := c.nodeCounts(cl)
	if err != nil {
		return 0, err
	}
	agentUnwell := false
	if ensureErr == nil && obs.Components[provisioner.APIServer].Healthy {
		// The node agent runs while the cluster has nodes, whatever else failed in this
		// pass (a failed bootstrap must not leave a tenant's nodes without their agent);
		// its trouble shows on the Nodes (NotReady), not as the control plane's.
		h, err := c.driver.EnsureNodeAgent(ctx, cl, counts.Total > 0)
		if err != nil && applyErr != nil {
			klog.ErrorS(err, "Node agent", "cluster", klog.KObj(cl)) // the condition reports the earlier step
		} else if err != nil {
			applyErr = &stepError{reason: "NodeAgentFailed", err: fmt.Errorf("node agent: %w", err)}
		} else if counts.Total > 0 && !h.Healthy {
			agentUnwell = true
			klog.V(2).InfoS("Node agent not healthy", "cluster", klog.KObj(cl), "message", h.Message)
		}
	}
	status := desiredStatus(cl, obs, ensureErr, applyErr)
	if ensureErr == nil && applyErr == nil && obs.Ready() && !meta.IsStatusConditionTrue(status.Conditions, v1alpha1.ClusterConditionDefaultsReady) {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: v1alpha1.ClusterConditionDefaultsReady, Status: metav1.ConditionTrue,
			Reason: "Seen", Message: "what a workload needs was seen in the cluster", ObservedGeneration: cl.Generation})
	}
	status.Nodes = counts
	if rotated {
		status.CredentialsRotation = cl.Annotations[v1alpha1.RotateCredentialsAnnotation]
	}
	if !apiequality.Semantic.DeepEqual(status, cl.Status) {
		c.recordTransition(cl, status)
		cl.Status = status
		if _, err := c.client.ContainerserviceV1alpha1().Clusters(cl.Namespace).UpdateStatus(ctx, cl, metav1.UpdateOptions{}); err != nil {
			// Retried at once, whatever else failed: the status must catch up.
			return 0, err
		}
	}
	var step *stepError
	if ensureErr == nil && errors.As(applyErr, &step) && step.reason == waitingForDefaults {
		return pollDefaults(cl), nil
	}
	if err := errors.Join(ensureErr, applyErr); err != nil {
		return 0, err
	}
	// A change rolling out (a kube-apiserver being replaced) moves on at each look.
	if obs.Ready() && !agentUnwell && !obs.Updating {
		return pollReady, nil
	}
	if !running(cl) && time.Since(cl.CreationTimestamp.Time) < firstStartWithin {
		return pollFirstStart, nil
	}
	return pollUnready, nil
}

// stepError is a failure of a step after the control plane was observed, with the
// Ready condition's reason for it.
type stepError struct {
	reason string
	err    error
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// bootstrapIfDue applies the platform's objects after a spec change, and again every
// rebootstrapEvery, as the platform manager.
func (c *Controller) bootstrapIfDue(ctx context.Context, cl *v1alpha1.Cluster) error {
	c.mu.Lock()
	last, ok := c.bootstrapped[cl.UID]
	c.mu.Unlock()
	if ok && last.generation == cl.Generation && time.Since(last.at) < rebootstrapEvery {
		return nil
	}
	cfg, err := c.driver.RESTConfig(ctx, cl, provisioner.PlatformManager)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := c.bootstrap(ctx, client, cl); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	c.mu.Lock()
	c.bootstrapped[cl.UID] = applied{generation: cl.Generation, at: time.Now()}
	c.mu.Unlock()
	return nil
}

// recordTransition records an Event when the phase changes to one a user cares about.
func (c *Controller) recordTransition(cl *v1alpha1.Cluster, status v1alpha1.ClusterStatus) {
	if status.Phase == cl.Status.Phase {
		return
	}
	klog.InfoS("Cluster phase changed", "cluster", klog.KObj(cl), "from", cl.Status.Phase, "to", status.Phase)
	ready := readyCondition(status)
	switch status.Phase {
	case v1alpha1.ClusterRunning:
		c.recorder.Event(cl, corev1.EventTypeNormal, "Running", "Every control plane component is healthy")
	case v1alpha1.ClusterFailed:
		c.recorder.Event(cl, corev1.EventTypeWarning, "ProvisioningFailed", ready)
	case v1alpha1.ClusterUpdating:
		c.recorder.Event(cl, corev1.EventTypeNormal, "Updating", "Components restart to apply a change")
	case v1alpha1.ClusterProvisioning:
		if cl.Status.Phase == v1alpha1.ClusterRunning {
			c.recorder.Event(cl, corev1.EventTypeWarning, "Unhealthy", ready)
		}
	}
}
