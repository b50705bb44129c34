// Package reconciler is the small runtime every provisioner controller runs on: a
// rate-limited work queue of namespace/name keys fed by shared informers, level-triggered
// reconciles that say when to look again, Prometheus metrics labelled by controller, and
// an Event recorder for our objects. Controllers write only their Reconcile.
package reconciler

import (
	"context"
	"errors"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	// Queue depth, latency and retries as workqueue_* metrics named after each controller.
	_ "k8s.io/component-base/metrics/prometheus/workqueue"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

// Reconciler brings the object of one key (namespace/name) a step closer to what it asks
// for. It is called again for the key after the returned delay (when positive), after an
// error (with backoff), and whenever the object changes.
type Reconciler interface {
	Reconcile(ctx context.Context, key string) (requeueAfter time.Duration, err error)
}

// ReconcilerFunc adapts a function to a Reconciler.
type ReconcilerFunc func(ctx context.Context, key string) (time.Duration, error)

// Reconcile calls f.
func (f ReconcilerFunc) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	return f(ctx, key)
}

// conflictRetry is how soon a key whose write met a newer object is reconciled again.
const conflictRetry = 100 * time.Millisecond

// permanentRetry is how soon a key whose reconcile hit a provisioner.PermanentError is
// tried again: the cause is outside the controller's reach, but an operator may fix it.
const permanentRetry = 30 * time.Second

var (
	reconciles = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "containerservice", Subsystem: "controller", Name: "reconciles_total",
		Help: "Reconciliations by controller and result (ok, conflict, error, permanent_error).", StabilityLevel: metrics.ALPHA,
	}, []string{"controller", "result"})
	reconcileSeconds = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: "containerservice", Subsystem: "controller", Name: "reconcile_duration_seconds",
		Help: "Time one reconciliation took, by controller.", Buckets: metrics.ExponentialBuckets(0.01, 2, 12), StabilityLevel: metrics.ALPHA,
	}, []string{"controller"})
)

func init() {
	legacyregistry.MustRegister(reconciles, reconcileSeconds)
}

// Controller runs a Reconciler over a queue of keys.
type Controller struct {
	name       string
	queue      workqueue.TypedRateLimitingInterface[string]
	reconciler Reconciler
	synced     []cache.InformerSynced
}

// New returns a controller named name (the label of its metrics and the name of its
// queue) that waits for the informers to sync before reconciling.
func New(name string, r Reconciler, synced ...cache.InformerSynced) *Controller {
	return &Controller{
		name: name,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
		reconciler: r,
		synced:     synced,
	}
}

// Name is the controller's name.
func (c *Controller) Name() string { return c.name }

// Enqueue queues the key of an object (or of a deletion tombstone).
func (c *Controller) Enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

// EnqueueKey queues a key.
func (c *Controller) EnqueueKey(key string) { c.queue.Add(key) }

// EnqueueAfter queues a key after a delay.
func (c *Controller) EnqueueAfter(key string, d time.Duration) { c.queue.AddAfter(key, d) }

// Handler queues every added, updated and deleted object.
func (c *Controller) Handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    c.Enqueue,
		UpdateFunc: func(_, obj any) { c.Enqueue(obj) },
		DeleteFunc: c.Enqueue,
	}
}

// WaitForSync waits for the controller's informers; false when ctx ended first.
func (c *Controller) WaitForSync(ctx context.Context) bool {
	return cache.WaitForNamedCacheSync(c.name, ctx.Done(), c.synced...)
}

// Run waits for the informers, then reconciles with the given number of workers until
// ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	klog.InfoS("Starting controller", "controller", c.name, "workers", workers)
	if !c.WaitForSync(ctx) {
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				for c.processNext(ctx) {
				}
			}, time.Second)
		})
	}
	<-ctx.Done()
	klog.InfoS("Stopping controller", "controller", c.name)
	// Returns once no reconcile runs: what the caller stops next (a server that lost its
	// lease) is not started again by a reconcile still finishing.
	c.queue.ShutDown()
	wg.Wait()
}

// processNext reconciles one key; false once the queue shut down.
func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	start := time.Now()
	after, err := c.reconciler.Reconcile(ctx, key)
	reconcileSeconds.WithLabelValues(c.name).Observe(time.Since(start).Seconds())
	var permanent *provisioner.PermanentError
	switch {
	case err == nil:
		reconciles.WithLabelValues(c.name, "ok").Inc()
		c.queue.Forget(key)
		if after > 0 {
			c.queue.AddAfter(key, after)
		}
	case errors.As(err, &permanent):
		reconciles.WithLabelValues(c.name, "permanent_error").Inc()
		klog.ErrorS(err, "Reconcile cannot succeed until the cause is fixed; retrying slowly", "controller", c.name, "key", key)
		c.queue.Forget(key)
		c.queue.AddAfter(key, permanentRetry)
	case apierrors.IsConflict(err):
		// The cache was behind the API (our own write is on its way back through the
		// informer): no failure, so no backoff; the object is looked at again shortly.
		reconciles.WithLabelValues(c.name, "conflict").Inc()
		klog.V(4).InfoS("Reconcile met a newer object; retrying", "controller", c.name, "key", key)
		c.queue.Forget(key)
		c.queue.AddAfter(key, conflictRetry)
	default:
		reconciles.WithLabelValues(c.name, "error").Inc()
		klog.ErrorS(err, "Reconcile failed; retrying", "controller", c.name, "key", key)
		c.queue.AddRateLimited(key)
	}
	return true
}

// Object returns the object of an informer event as T, unwrapping a deletion's tombstone
// (an object deleted while the watch was down arrives as cache.DeletedFinalStateUnknown).
func Object[T any](obj any) (T, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	o, ok := obj.(T)
	return o, ok
}
