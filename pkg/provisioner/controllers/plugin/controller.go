// Package plugin makes Plugins real: it renders the add-on's version from the catalog with
// the Plugin's settings and applies the objects into the user cluster from the management
// side with server-side apply and one field manager, labelled with the Plugin's name. It
// keeps the inventory of what it applied in status.applied (out of the tenant's reach),
// prunes exactly what a new render no longer has and everything when the Plugin is
// switched off or deleted, reports health from the objects (kstatus), and puts back what
// someone deleted or changed inside the cluster at the next look.
package plugin

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
)

// Name is the controller's name in metrics and logs.
const Name = "plugin"

const (
	// resync is how often an add-on's objects are read back: their health, and what
	// someone deleted or changed inside the cluster, which is then applied again.
	resync = 10 * time.Second
	// waitForCluster is how soon a Plugin looks again at a cluster that is not running.
	waitForCluster = 5 * time.Second
	// progressing is how soon an add-on whose objects are not all Current is read again.
	progressing = 2 * time.Second
	// notOursRetry is how soon a Plugin blocked by an object it did not make looks again
	// (the tenant may have removed it).
	notOursRetry = 30 * time.Second
)

// Controller reconciles Plugins.
type Controller struct {
	*reconciler.Controller
	client   versioned.Interface
	plugins  listers.PluginLister
	clusters listers.ClusterLister
	clients  *clusterclient.Cache
	recorder record.EventRecorder
	// target reaches inside a user cluster (a variable for tests).
	target func(ctx context.Context, cl *v1alpha1.Cluster) (Target, error)
}

// New returns a controller over the shared informers' Plugins and Clusters.
func New(client versioned.Interface, plugins informers.PluginInformer, clusters informers.ClusterInformer, access provisioner.Access, recorder record.EventRecorder) (*Controller, error) {
	c := &Controller{client: client, plugins: plugins.Lister(), clusters: clusters.Lister(),
		clients: clusterclient.New(access, provisioner.PlatformManager), recorder: recorder}
	c.target = c.dynamicTarget
	c.Controller = reconciler.New(Name, c, plugins.Informer().HasSynced, clusters.Informer().HasSynced)
	// A change of spec or metadata concerns the Plugin; a change of its status alone (the
	// controller's own writes) does not: re-reading it at once would make a status that
	// changes on every pass (a message quoting the cluster) a loop past the rate limiter.
	if _, err := plugins.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.Enqueue,
		UpdateFunc: func(old, obj any) {
			o, n := old.(*v1alpha1.Plugin), obj.(*v1alpha1.Plugin)
			if !onlyVersionChanged(o, n) {
				c.Enqueue(obj)
			}
		},
		DeleteFunc: c.Enqueue,
	}); err != nil {
		return nil, err
	}
	// A cluster that starts running, or goes, concerns all its plugins.
	_, err := clusters.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.clusterChanged,
		UpdateFunc: func(old, obj any) {
			o, n := old.(*v1alpha1.Cluster), obj.(*v1alpha1.Cluster)
			if o.Status.Phase != n.Status.Phase || (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) {
				c.clusterChanged(obj)
			}
		},
		DeleteFunc: c.clusterChanged,
	})
	return c, err
}

func (c *Controller) clusterChanged(obj any) {
	cl, ok := reconciler.Object[*v1alpha1.Cluster](obj)
	if !ok {
		return
	}
	if cl.DeletionTimestamp != nil {
		c.clients.Forget(cl.UID)
	}
	plugins, err := c.plugins.Plugins(cl.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range plugins {
		if p.Spec.ClusterName == cl.Name {
			c.Enqueue(p)
		}
	}
}

// Reconcile brings one Plugin's objects in its cluster to what it asks for.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.plugins.Plugins(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	p := cached.DeepCopy()
	cl, err := c.clusters.Clusters(ns).Get(p.Spec.ClusterName)
	if apierrors.IsNotFound(err) {
		cl = nil
	} else if err != nil {
		return 0, err
	}
	if cl != nil && !sameCluster(p, cl) {
		cl = nil // another cluster of the same name: the Plugin's own is gone
	}
	if p.DeletionTimestamp != nil {
		return 0, c.finish(ctx, p, cl)
	}
	if cl == nil || cl.DeletionTimestamp != nil {
		return 0, nil // the cluster controller deletes the Plugin with its cluster
	}
	if !slices.Contains(p.Finalizers, v1alpha1.PluginFinalizer) || p.Annotations[v1alpha1.PluginClusterUIDAnnotation] == "" {
		if !slices.Contains(p.Finalizers, v1alpha1.PluginFinalizer) {
			p.Finalizers = append(p.Finalizers, v1alpha1.PluginFinalizer)
		}
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[v1alpha1.PluginClusterUIDAnnotation] = string(cl.UID)
		updated, err := c.client.ContainerserviceV1alpha1().Plugins(ns).Update(ctx, p, metav1.UpdateOptions{})
		if err != nil {
			return 0, fmt.Errorf("add the finalizer to %s: %w", key, err)
		}
		p = updated
	}
	if !clusterclient.Reachable(cl) {
		status := p.Status.DeepCopy()
		status.Phase = v1alpha1.PluginPending
		setReady(status, p.Generation, metav1.ConditionFalse, "WaitingForCluster", fmt.Sprintf("waiting for cluster %s to run (%s)", cl.Name, phaseOf(cl)))
		return waitForCluster, c.writeStatus(ctx, p, status)
	}
	target, err := c.target(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("reach cluster %s: %w", cl.Name, err)
	}
	status, after, err := c.sync(ctx, target, p)
	if werr := c.writeStatus(ctx, p, status); werr != nil {
		return 0, werr
	}
	return after, err
}

// finish removes a deleted Plugin's objects from its cluster, then its finalizer. When
// the cluster goes too, its objects go with it: nothing to remove one by one.
func (c *Controller) finish(ctx context.Context, p *v1alpha1.Plugin, cl *v1alpha1.Cluster) error {
	if !slices.Contains(p.Finalizers, v1alpha1.PluginFinalizer) {
		return nil
	}
	if cl == nil {
		// The cache may lag behind the API: a cluster is gone when the API says so.
		got, err := c.client.ContainerserviceV1alpha1().Clusters(p.Namespace).Get(ctx, p.Spec.ClusterName, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("get cluster %s: %w", p.Spec.ClusterName, err)
		}
		if err == nil && sameCluster(p, got) {
			cl = got
		}
	}
	if cl != nil && cl.DeletionTimestamp == nil {
		if !clusterclient.Reachable(cl) {
			return fmt.Errorf("cluster %s is %s: the objects of plugin %s are removed once it runs", cl.Name, phaseOf(cl), p.Name)
		}
		target, err := c.target(ctx, cl)
		if err != nil {
			return fmt.Errorf("reach cluster %s: %w", cl.Name, err)
		}
		kept, err := prune(ctx, target, p.Name, p.Status.Applied, nil)
		if err != nil {
			return err
		}
		c.reportKept(p, kept)
	}
	p.Finalizers = slices.DeleteFunc(p.Finalizers, func(f string) bool { return f == v1alpha1.PluginFinalizer })
	if _, err := c.client.ContainerserviceV1alpha1().Plugins(p.Namespace).Update(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove the finalizer of %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

func (c *Controller) reportKept(p *v1alpha1.Plugin, kept []v1alpha1.AppliedObject) {
	for _, o := range kept {
		c.recorder.Eventf(p, corev1.EventTypeNormal, "ObjectKept", "kept %s: it may hold data", describe(o))
	}
}

// writeStatus writes the status when it changed, recording an Event on a phase change.
func (c *Controller) writeStatus(ctx context.Context, p *v1alpha1.Plugin, status *v1alpha1.PluginStatus) error {
	status.ObservedGeneration = p.Generation
	if statusEqual(&p.Status, status) {
		return nil
	}
	if status.Phase != p.Status.Phase {
		klog.InfoS("Plugin phase", "plugin", klog.KObj(p), "from", p.Status.Phase, "to", status.Phase)
		c.recorder.Eventf(p, corev1.EventTypeNormal, string(status.Phase), "plugin %s is %s", p.Name, status.Phase)
	}
	p.Status = *status
	if _, err := c.client.ContainerserviceV1alpha1().Plugins(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update the status of %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// sameCluster reports whether cl is the cluster the Plugin was applied to: a cluster
// deleted and created again under the same name is another one, whose objects the
// Plugin's inventory does not describe.
func sameCluster(p *v1alpha1.Plugin, cl *v1alpha1.Cluster) bool {
	uid := p.Annotations[v1alpha1.PluginClusterUIDAnnotation]
	return uid == "" || uid == string(cl.UID)
}

// onlyVersionChanged reports whether two versions of a Plugin differ in their
// resourceVersion and managed fields alone (a status write).
func onlyVersionChanged(o, n *v1alpha1.Plugin) bool {
	a, b := o.ObjectMeta.DeepCopy(), n.ObjectMeta.DeepCopy()
	a.ResourceVersion, b.ResourceVersion = "", ""
	a.ManagedFields, b.ManagedFields = nil, nil
	return apiequality.Semantic.DeepEqual(a, b)
}

func phaseOf(cl *v1alpha1.Cluster) string {
	if cl.Status.Phase == "" {
		return "Pending"
	}
	return string(cl.Status.Phase)
}
