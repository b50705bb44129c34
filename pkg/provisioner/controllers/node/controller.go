// Package node makes Nodes real: each Node object becomes a node in its user
// cluster, kept by the driver's node agent (kwok on the local driver), with the capacity,
// labels, taints and cordon the spec asks for (edits made inside the cluster to those are
// put back), and a status mirrored from the cluster: phase, conditions, addresses,
// allocatable, kubelet version and its pods by phase. Deleting a Node drains it first
// through the Eviction API (k8s.io/kubectl/pkg/drain), so PodDisruptionBudgets hold,
// until its pods are gone or the drain timeout passes; the deadline is kept in the
// status, so a drain survives a restart of the server.
package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	informers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions/containerservice/v1alpha1"
	listers "github.com/ucloudstack/containerservice/pkg/generated/listers/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/clusterclient"
	"github.com/ucloudstack/containerservice/pkg/provisioner/reconciler"
)

// Name is the controller's name in metrics and logs.
const Name = "node"

const (
	// resync is how often a node is compared with its spec and its status mirrored from
	// the user cluster, which also repairs edits made inside the cluster.
	resync = 10 * time.Second
	// waitForCluster is how soon a node looks again at a cluster that is not running.
	waitForCluster = 5 * time.Second
	// drainPoll is how often a drain that pods' budgets block tries again, and
	// drainPollEvicting how soon it looks whether the pods it evicted are gone.
	drainPoll         = 2 * time.Second
	maxDrainPoll      = 16 * time.Second
	drainPollEvicting = 300 * time.Millisecond
	// overdueGrace is how long a drain past its deadline waits for an eviction pass it
	// cannot make (its node cannot be cordoned or its pods listed) before deleting.
	overdueGrace = time.Minute
)

// Controller reconciles Nodes.
type Controller struct {
	*reconciler.Controller
	client   versioned.Interface
	nodes    listers.NodeLister
	clusters listers.ClusterLister
	clients  *clusterclient.Cache
	recorder record.EventRecorder
	// userClient reaches inside a user cluster; now is the clock (variables for tests).
	userClient func(context.Context, *v1alpha1.Cluster) (kubernetes.Interface, error)
	now        func() time.Time
	watches    watches
	// drains remembers what this process did for each drain.
	drains drainMemory
	// watching is false in unit tests, which have no real cluster to watch.
	watching bool
}

// New returns a controller over the shared informers' Nodes and Clusters.
func New(client versioned.Interface, nodes informers.NodeInformer, clusters informers.ClusterInformer, access provisioner.Access, recorder record.EventRecorder) (*Controller, error) {
	c := &Controller{client: client, nodes: nodes.Lister(), clusters: clusters.Lister(),
		clients: clusterclient.New(access, provisioner.PlatformManager), recorder: recorder, now: time.Now}
	c.userClient = c.clients.For
	c.watching = true
	c.watches = watches{byUID: map[types.UID]*watch{}, enqueue: func(key string) { c.EnqueueKey(key) }, unmark: c.unmark}
	c.Controller = reconciler.New(Name, c, nodes.Informer().HasSynced, clusters.Informer().HasSynced)
	if _, err := nodes.Informer().AddEventHandler(c.Handler()); err != nil {
		return nil, err
	}
	// A Node gone by any path takes what this process remembered of its drain.
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if n, ok := reconciler.Object[*v1alpha1.Node](obj); ok {
			c.drains.forget(n.UID)
		}
	}}); err != nil {
		return nil, err
	}
	// A cluster that starts running, or goes, concerns all its nodes.
	_, err := clusters.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.clusterChanged,
		UpdateFunc: func(old, obj any) {
			o, n := old.(*v1alpha1.Cluster), obj.(*v1alpha1.Cluster)
			if o.Status.Phase != n.Status.Phase || (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
				!equalDurations(o.Spec.NodeDrainTimeout, n.Spec.NodeDrainTimeout) {
				c.clusterChanged(obj)
			}
		},
		DeleteFunc: func(obj any) { c.clusterEvent(obj, true) },
	})
	return c, err
}

func equalDurations(a, b *metav1.Duration) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && a.Duration == b.Duration)
}

func (c *Controller) clusterChanged(obj any) { c.clusterEvent(obj, false) }

// clusterEvent brings the cluster's nodes through the queue; a cluster going or gone
// also loses its client and its watch.
func (c *Controller) clusterEvent(obj any, deleted bool) {
	cl, ok := reconciler.Object[*v1alpha1.Cluster](obj)
	if !ok {
		return
	}
	if deleted || cl.DeletionTimestamp != nil {
		c.clients.Forget(cl.UID)
		c.watches.stop(cl.UID)
	}
	nodes, err := c.nodes.Nodes(cl.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, n := range nodes {
		if n.Spec.ClusterName == cl.Name {
			c.Enqueue(n)
		}
	}
}

// Reconcile brings one Node a step closer to what it asks for.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.nodes.Nodes(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := cached.DeepCopy()
	cl, err := c.clusters.Clusters(ns).Get(n.Spec.ClusterName)
	if apierrors.IsNotFound(err) {
		cl = nil
	} else if err != nil {
		return 0, err
	}
	clusterGoing := cl == nil || cl.DeletionTimestamp != nil
	if n.DeletionTimestamp != nil {
		if !slices.Contains(n.Finalizers, v1alpha1.NodeFinalizer) {
			return 0, nil
		}
		if cl == nil {
			// The cache may lag behind the API: a cluster is gone when the API says so.
			if cl, err = c.client.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, n.Spec.ClusterName, metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return 0, fmt.Errorf("get cluster %s: %w", n.Spec.ClusterName, err)
			}
			clusterGoing = err != nil || cl.DeletionTimestamp != nil
		}
		if clusterGoing {
			// The whole cluster goes, its nodes with its control plane: nothing to drain.
			c.drains.forget(n.UID)
			return 0, c.removeFinalizer(ctx, n)
		}
		return c.drainAndDelete(ctx, n, cl)
	}
	if clusterGoing {
		return 0, nil // the cluster controller deletes the Node with its cluster
	}
	if !slices.Contains(n.Finalizers, v1alpha1.NodeFinalizer) {
		n.Finalizers = append(n.Finalizers, v1alpha1.NodeFinalizer)
		_, err := c.client.ContainerserviceV1alpha1().Nodes(ns).Update(ctx, n, metav1.UpdateOptions{})
		return 0, err // the update brings the node back through the queue
	}
	if !clusterclient.Reachable(cl) {
		return waitForCluster, c.writeStatus(ctx, n, waitingStatus(n, fmt.Sprintf("waiting for cluster %s to run", cl.Name)))
	}
	client, err := c.userClient(ctx, cl)
	if err != nil {
		return 0, err
	}
	if c.watching {
		if watcher, err := c.clients.ForWatch(ctx, cl); err == nil {
			c.watches.ensure(cl, watcher)
		}
	}
	node, err := c.ensureUserNode(ctx, client, n)
	if err != nil {
		var conflict *ownerConflict
		if errors.As(err, &conflict) {
			return resync, c.writeStatus(ctx, n, failedStatus(n, conflict.Error()))
		}
		return 0, err
	}
	pods, err := podPhases(ctx, client, n.Name)
	if err != nil {
		return 0, err
	}
	return resync, c.writeStatus(ctx, n, mirroredStatus(n, node, pods))
}

// writeStatus writes the status when it changed, recording an Event on a phase change,
// and leaves n as the API returned it.
func (c *Controller) writeStatus(ctx context.Context, n *v1alpha1.Node, status v1alpha1.NodeStatus) error {
	if statusEqual(n.Status, status) {
		return nil
	}
	if status.Phase != n.Status.Phase {
		c.recordTransition(n, status.Phase)
	}
	n.Status = status
	updated, err := c.client.ContainerserviceV1alpha1().Nodes(n.Namespace).UpdateStatus(ctx, n, metav1.UpdateOptions{})
	if err == nil {
		// The caller goes on with the object as written (a finalizer removed next must
		// not meet a conflict with this very write).
		*n = *updated
	}
	return err
}

func (c *Controller) recordTransition(n *v1alpha1.Node, phase v1alpha1.NodePhase) {
	switch phase {
	case v1alpha1.NodeReady:
		c.recorder.Event(n, "Normal", "NodeReady", "The node is Ready in its cluster")
	case v1alpha1.NodeNotReady:
		if n.Status.Phase == v1alpha1.NodeReady {
			c.recorder.Event(n, "Warning", "NodeNotReady", "The node is no longer Ready in its cluster")
		}
	case v1alpha1.NodeFailed:
		c.recorder.Event(n, "Warning", "NodeFailed", "The node cannot be made; see its conditions")
	}
}

// removeFinalizer lets the Node go.
func (c *Controller) removeFinalizer(ctx context.Context, n *v1alpha1.Node) error {
	n.Finalizers = slices.DeleteFunc(n.Finalizers, func(f string) bool { return f == v1alpha1.NodeFinalizer })
	_, err := c.client.ContainerserviceV1alpha1().Nodes(n.Namespace).Update(ctx, n, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
