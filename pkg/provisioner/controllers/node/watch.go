package node

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/reconciler"
)

// watches follow the platform's nodes inside each user cluster, so that a node turning
// Ready (or edited by someone inside) brings its Node through the queue at once rather
// than at the next resync. One watch per cluster, on the nodes the platform labelled;
// it is replaced when the cluster's client changes (a credential rotation) and stopped
// when the cluster goes.
type watches struct {
	mu sync.Mutex
	// ctx is the controller's run context; nil until Run (then no watch is started).
	ctx   context.Context
	byUID map[types.UID]*watch
	// unmark takes the node agent's mark off a node the platform did not make.
	unmark func(ctx context.Context, client kubernetes.Interface, cl *v1alpha1.Cluster, node *corev1.Node)
	// stopped are the clusters whose watch ended for good (the cluster is going): a
	// reconcile that read the cluster just before must not start it again.
	stopped map[types.UID]bool
	enqueue func(key string)
}

// unmarkTimeout bounds taking the agent's mark off a node (the watch's client has none).
const unmarkTimeout = 30 * time.Second

type watch struct {
	client kubernetes.Interface
	cancel context.CancelFunc
}

// ensure starts the cluster's watch unless one runs with the same client.
func (w *watches) ensure(cl *v1alpha1.Cluster, client kubernetes.Interface) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx == nil || w.stopped[cl.UID] {
		return
	}
	if cur := w.byUID[cl.UID]; cur != nil {
		if cur.client == client {
			return
		}
		cur.cancel()
	}
	ctx, cancel := context.WithCancel(w.ctx)
	w.byUID[cl.UID] = &watch{client: client, cancel: cancel}
	ns := cl.Namespace
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = v1alpha1.ManagedByLabel + "=" + v1alpha1.ManagedByValue
	}))
	informer := factory.Core().V1().Nodes().Informer()
	enqueue := func(obj any) {
		if node, ok := reconciler.Object[*corev1.Node](obj); ok {
			w.enqueue(ns + "/" + node.Name)
		}
	}
	// A node marked for the agent that no Node of the platform asked for (a tenant
	// labelled their own) loses the mark: the agent keeps only nodes the platform made.
	// One unmarking per node at a time, however many events it makes.
	var unmarking sync.Map
	unmarkStray := func(obj any) bool {
		node, ok := obj.(*corev1.Node)
		if !ok || w.unmark == nil || madeByPlatform(node) {
			return false
		}
		if _, busy := unmarking.LoadOrStore(node.Name, true); !busy {
			go func() {
				defer unmarking.Delete(node.Name)
				ctx, cancel := context.WithTimeout(ctx, unmarkTimeout)
				defer cancel()
				w.unmark(ctx, client, cl, node)
			}()
		}
		return true
	}
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if !unmarkStray(obj) {
				enqueue(obj)
			}
		},
		UpdateFunc: func(old, obj any) {
			if unmarkStray(obj) {
				return
			}
			// Heartbeats (lease renewals do not touch the node) change only times: a node
			// is looked at again when something the Node mirrors or owns changed.
			if o, n := old.(*corev1.Node), obj.(*corev1.Node); readyOf(o) != readyOf(n) || o.Generation != n.Generation ||
				!sameMeta(o, n) || !sameResources(o.Status.Allocatable, n.Status.Allocatable) {
				enqueue(obj)
			}
		},
		DeleteFunc: enqueue,
	})
	if err != nil {
		klog.ErrorS(err, "Cannot watch the nodes of a cluster", "cluster", klog.KObj(cl))
		return
	}
	factory.Start(ctx.Done())
	klog.V(2).InfoS("Watching the platform's nodes", "cluster", klog.KObj(cl))
}

// stop ends the cluster's watch for good.
func (w *watches) stop(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped == nil {
		w.stopped = map[types.UID]bool{}
	}
	w.stopped[uid] = true
	if cur := w.byUID[uid]; cur != nil {
		cur.cancel()
		delete(w.byUID, uid)
	}
}

func readyOf(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

func sameMeta(a, b *corev1.Node) bool {
	if len(a.Labels) != len(b.Labels) || a.Spec.Unschedulable != b.Spec.Unschedulable || len(a.Spec.Taints) != len(b.Spec.Taints) {
		return false
	}
	for k, v := range a.Labels {
		if b.Labels[k] != v {
			return false
		}
	}
	for i := range a.Spec.Taints {
		if !a.Spec.Taints[i].MatchTaint(&b.Spec.Taints[i]) || a.Spec.Taints[i].Value != b.Spec.Taints[i].Value {
			return false
		}
	}
	return true
}

// Run runs the controller until ctx ends; watches of user clusters live as long.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.watches.mu.Lock()
	c.watches.ctx = ctx
	c.watches.mu.Unlock()
	c.Controller.Run(ctx, workers)
}
