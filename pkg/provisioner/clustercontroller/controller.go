// Package clustercontroller drives Clusters: it guards them with a finalizer, asks the
// driver to make their control plane exist and run, and reports phase, endpoints and a
// condition per component through the status subresource. It is level-triggered: each
// pass compares the object with what the driver observes, so it resumes wherever a
// restart left it.
package clustercontroller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	informers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions/containerservice/v1alpha1"
	listers "github.com/ucloudstack/containerservice/pkg/generated/listers/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

const (
	// RotateAnnotation asks for a credential rotation: set it to a new value (a timestamp,
	// say) and the controller replaces the cluster's client CA once for that value.
	RotateAnnotation = "containerservice.ucloudstack.io/rotate-credentials"
	// ConditionReady is True when every component is healthy.
	ConditionReady = "Ready"

	// Health is re-checked this often while a cluster is coming up or unwell, and this
	// often once it is Ready.
	pollUnready = 2 * time.Second
	pollReady   = 15 * time.Second
)

var (
	reconciles = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "containerservice", Subsystem: "cluster_controller", Name: "reconciles_total",
		Help: "Cluster reconciliations by result (ok, error, permanent_error).", StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	reconcileSeconds = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: "containerservice", Subsystem: "cluster_controller", Name: "reconcile_duration_seconds",
		Help: "Time one Cluster reconciliation took.", Buckets: metrics.ExponentialBuckets(0.01, 2, 12), StabilityLevel: metrics.ALPHA,
	})
)

func init() {
	legacyregistry.MustRegister(reconciles, reconcileSeconds)
}

// Controller reconciles Clusters with a driver.
type Controller struct {
	client versioned.Interface
	lister listers.ClusterLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	driver provisioner.Driver
}

// New returns a controller over the informer's Clusters.
func New(client versioned.Interface, informer informers.ClusterInformer, driver provisioner.Driver) (*Controller, error) {
	c := &Controller{
		client: client,
		lister: informer.Lister(),
		synced: informer.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "clusters"}),
		driver: driver,
	}
	_, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	})
	return c, err
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// Run processes Clusters with the given number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	klog.InfoS("Starting cluster controller")
	if !cache.WaitForNamedCacheSync("clusters", ctx.Done(), c.synced) {
		return
	}
	// Control planes whose Cluster is gone (deleted while the server was down, or its
	// finalizer removed by hand) are found here and deleted by reconcile.
	known, err := c.driver.Known()
	if err != nil {
		klog.ErrorS(err, "Cannot list the driver's clusters; leftovers stay until their name is used again")
	}
	for _, key := range known {
		c.queue.Add(key)
	}
	for range workers {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	for {
		select {
		case key := <-c.driver.Changes():
			c.queue.Add(key)
		case <-ctx.Done():
			return
		}
	}
}

func (c *Controller) worker(ctx context.Context) {
	for c.next(ctx) {
	}
}

func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	start := time.Now()
	after, err := c.reconcile(ctx, key)
	reconcileSeconds.Observe(time.Since(start).Seconds())
	var permanent *provisioner.PermanentError
	switch {
	case err == nil:
		reconciles.WithLabelValues("ok").Inc()
		c.queue.Forget(key)
		if after > 0 {
			c.queue.AddAfter(key, after)
		}
	case errors.As(err, &permanent):
		// Retried slowly: the cause is outside the controller's reach, but an operator
		// may fix it (install binaries, say) and the cluster then comes up on its own.
		reconciles.WithLabelValues("permanent_error").Inc()
		klog.ErrorS(err, "Cluster cannot be provisioned", "cluster", key)
		c.queue.AddAfter(key, 30*time.Second)
	default:
		reconciles.WithLabelValues("error").Inc()
		klog.ErrorS(err, "Reconciling cluster failed; retrying", "cluster", key)
		c.queue.AddRateLimited(key)
	}
	return true
}

// reconcile brings one Cluster a step closer to what it asks for and returns when to look again.
func (c *Controller) reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.lister.Clusters(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// Normally the finalizer has seen to this already; if not, nothing may be left.
		return 0, c.driver.Delete(ctx, ns, name)
	}
	if err != nil {
		return 0, err
	}
	cl := cached.DeepCopy()
	api := c.client.ContainerserviceV1alpha1().Clusters(ns)

	if cl.DeletionTimestamp != nil {
		if !slices.Contains(cl.Finalizers, cs.ClusterFinalizer) {
			return 0, nil
		}
		if cl.Status.Phase != v1alpha1.ClusterDeleting {
			cl.Status.Phase = v1alpha1.ClusterDeleting
			if cl, err = api.UpdateStatus(ctx, cl, metav1.UpdateOptions{}); err != nil {
				return 0, err
			}
		}
		if err := c.driver.Delete(ctx, ns, name); err != nil {
			return 0, fmt.Errorf("delete the control plane of %s: %w", key, err)
		}
		cl.Finalizers = slices.DeleteFunc(cl.Finalizers, func(f string) bool { return f == cs.ClusterFinalizer })
		_, err := api.Update(ctx, cl, metav1.UpdateOptions{})
		return 0, err
	}
	if !slices.Contains(cl.Finalizers, cs.ClusterFinalizer) {
		cl.Finalizers = append(cl.Finalizers, cs.ClusterFinalizer)
		_, err := api.Update(ctx, cl, metav1.UpdateOptions{})
		return 0, err // the update brings the cluster back through the queue
	}

	obs, ensureErr := c.driver.Ensure(ctx, cl)
	if ensureErr == nil {
		if token := cl.Annotations[RotateAnnotation]; token != "" && token != cl.Status.CredentialsRotation {
			if ensureErr = c.driver.RotateCredentials(ctx, cl); ensureErr == nil {
				cl.Status.CredentialsRotation = token
				// Report the components as they are now, restarting, not as they were.
				obs, ensureErr = c.driver.Ensure(ctx, cl)
			}
		}
	}
	status := desiredStatus(cl, obs, ensureErr)
	if !apiequality.Semantic.DeepEqual(status, cl.Status) {
		cl.Status = status
		if _, err := api.UpdateStatus(ctx, cl, metav1.UpdateOptions{}); err != nil {
			return 0, errors.Join(ensureErr, err)
		}
	}
	if ensureErr != nil {
		return 0, ensureErr
	}
	if obs.Ready() {
		return pollReady, nil
	}
	return pollUnready, nil
}

// desiredStatus is the status that reports obs (or the error that kept the driver from
// observing anything).
func desiredStatus(cl *v1alpha1.Cluster, obs *provisioner.Observation, ensureErr error) v1alpha1.ClusterStatus {
	status := *cl.Status.DeepCopy()
	status.ObservedGeneration = cl.Generation
	set := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: cl.Generation})
	}
	var permanent *provisioner.PermanentError
	switch {
	case errors.As(ensureErr, &permanent):
		status.Phase = v1alpha1.ClusterFailed
		set(ConditionReady, false, "ProvisioningFailed", ensureErr.Error())
		return status
	case obs == nil:
		if status.Phase == "" || status.Phase == v1alpha1.ClusterPending {
			status.Phase = v1alpha1.ClusterProvisioning
		}
		set(ConditionReady, false, "ProvisioningError", fmt.Sprintf("%v (retrying)", ensureErr))
		return status
	}

	status.Version = obs.Version
	status.Endpoints = v1alpha1.ClusterEndpoints{Internal: obs.Internal, External: obs.External}
	var unhealthy []string
	for _, comp := range provisioner.Components {
		h := obs.Components[comp]
		if h.Healthy {
			set(comp+"Ready", true, "Healthy", comp+" answers its health check")
		} else {
			set(comp+"Ready", false, "Unhealthy", h.Message)
			unhealthy = append(unhealthy, comp)
		}
	}
	switch {
	case len(unhealthy) == 0 && ensureErr == nil:
		status.Phase = v1alpha1.ClusterRunning
		set(ConditionReady, true, "ControlPlaneReady", "every control plane component is healthy")
	case len(unhealthy) == 0:
		status.Phase = v1alpha1.ClusterProvisioning
		set(ConditionReady, false, "BootstrapFailed", ensureErr.Error())
	default:
		status.Phase = v1alpha1.ClusterProvisioning
		set(ConditionReady, false, "ComponentsUnhealthy", fmt.Sprintf("not healthy: %v; see the component conditions", unhealthy))
	}
	return status
}
