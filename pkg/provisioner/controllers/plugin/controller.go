// Package plugin makes Plugins real: it renders the add-on's version from the catalog with
// the Plugin's settings and applies the objects into the user cluster from the management
// side with server-side apply and one field manager, labelled with the Plugin's name. It
// keeps the inventory of what it applied in status.applied (out of the tenant's reach)
// with the render's digest (an unchanged render writes nothing), prunes exactly what a
// new render no longer has and everything when the Plugin is switched off or deleted
// (what holds data is kept and named), reports health from the objects (kstatus), puts
// back within seconds what someone deleted or changed inside the cluster (watches of the
// inventory's kinds), and runs the csi add-on's volume provisioner.
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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	informers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions/containerservice/v1alpha1"
	listers "github.com/ucloudstack/containerservice/pkg/generated/listers/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/catalog"
	"github.com/ucloudstack/containerservice/pkg/provisioner/clusterclient"
	"github.com/ucloudstack/containerservice/pkg/provisioner/reconciler"
)

// Name is the controller's name in metrics and logs.
const Name = "plugin"

const (
	// waitForCluster is how soon a Plugin looks again at a cluster that is not running.
	waitForCluster = 5 * time.Second
	// progressing is how soon an add-on whose objects are not all Current is read again.
	progressing = 2 * time.Second
	// coalesce is how long the watches' news of a Plugin's objects waits to be looked at,
	// so that a burst of changes (or a tenant changing an object in a loop) is one look.
	coalesce = 100 * time.Millisecond
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
	target  func(ctx context.Context, cl *v1alpha1.Cluster) (Target, error)
	states  *states
	watches *watches
	// volumes runs the csi add-on's provisioner per cluster; nil when the driver keeps
	// no volumes.
	volumes volumeRunner
}

// volumeRunner runs one volume provisioner per cluster.
type volumeRunner interface {
	Ensure(ctx context.Context, cl *v1alpha1.Cluster) error
	Stop(uid types.UID)
	// Forget stops the provisioner of a cluster that goes, for good.
	Forget(uid types.UID)
	StopAll()
}

// New returns a controller over the shared informers' Plugins and Clusters.
func New(client versioned.Interface, plugins informers.PluginInformer, clusters informers.ClusterInformer, access provisioner.Access, recorder record.EventRecorder) (*Controller, error) {
	c := &Controller{client: client, plugins: plugins.Lister(), clusters: clusters.Lister(),
		clients: clusterclient.New(access, provisioner.PlatformManager), recorder: recorder}
	c.target = c.dynamicTarget
	c.states = newStates()
	c.Controller = reconciler.New(Name, c, plugins.Informer().HasSynced, clusters.Informer().HasSynced)
	c.watches = newWatches(c.states.changed, func(key string) { c.EnqueueAfter(key, coalesce) })
	if v, ok := access.(provisioner.Volumes); ok {
		c.volumes = newVolumeRunner(v, c.clients)
	}
	// A change of spec or metadata concerns the Plugin; a change of its status alone (the
	// controller's own writes) does not: re-reading it at once would make a status that
	// changes on every pass (a message quoting the cluster) a loop past the rate limiter.
	if _, err := plugins.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.pluginChanged,
		UpdateFunc: func(old, obj any) {
			o, n := old.(*v1alpha1.Plugin), obj.(*v1alpha1.Plugin)
			if !onlyVersionChanged(o, n) {
				c.pluginChanged(obj)
			}
		},
		DeleteFunc: c.pluginChanged,
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

// Run follows the add-ons' objects inside the clusters and reconciles until ctx ends.
// The volume provisioners stop with it: only the server that holds the lease provisions.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.watches.start(ctx)
	c.Controller.Run(ctx, workers)
	if c.volumes != nil {
		c.volumes.StopAll()
	}
}

// pluginChanged queues the Plugin and the other Plugins of its cluster: one add-on's
// render may depend on another's (monitoring's storage on csi's class).
func (c *Controller) pluginChanged(obj any) {
	p, ok := reconciler.Object[*v1alpha1.Plugin](obj)
	if !ok {
		return
	}
	c.Enqueue(obj)
	c.enqueueCluster(p.Namespace, p.Spec.ClusterName)
}

func (c *Controller) clusterChanged(obj any) {
	cl, ok := reconciler.Object[*v1alpha1.Cluster](obj)
	if !ok {
		return
	}
	if cl.DeletionTimestamp != nil {
		c.clients.Forget(cl.UID)
		c.watches.stop(cl.UID)
		if c.volumes != nil {
			// Stopping waits for the provisioner to end: not in the informer's handler.
			go c.volumes.Forget(cl.UID)
		}
	}
	c.enqueueCluster(cl.Namespace, cl.Name)
}

// enqueueCluster queues every Plugin of a cluster.
func (c *Controller) enqueueCluster(namespace, cluster string) {
	plugins, err := c.plugins.Plugins(namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range plugins {
		if p.Spec.ClusterName == cluster {
			c.Enqueue(p)
		}
	}
}

// env is what a Plugin's render knows of its cluster: the csi add-on's class when the
// cluster has that add-on switched on.
func (c *Controller) env(p *v1alpha1.Plugin) catalog.Env {
	plugins, err := c.plugins.Plugins(p.Namespace).List(labels.Everything())
	if err != nil {
		return catalog.Env{}
	}
	for _, o := range plugins {
		if o.Spec.ClusterName == p.Spec.ClusterName && o.Spec.Type == catalog.CSI && o.DeletionTimestamp == nil &&
			(o.Spec.Enabled == nil || *o.Spec.Enabled) {
			return catalog.Env{StorageClass: v1alpha1.CSIStorageClassName}
		}
	}
	return catalog.Env{}
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
	status, after, err := c.sync(ctx, target, p, c.env(p))
	if werr := c.writeStatus(ctx, p, status); werr != nil {
		return 0, werr
	}
	c.follow(ctx, cl, p, target, status)
	return after, err
}

// follow watches the kinds of the Plugin's inventory once it is applied, and runs the
// csi add-on's provisioner while that add-on is; it stops both when switched off.
func (c *Controller) follow(ctx context.Context, cl *v1alpha1.Cluster, p *v1alpha1.Plugin, t Target, st *v1alpha1.PluginStatus) {
	key := p.Namespace + "/" + p.Name
	on := st.RenderDigest != "" && st.Phase != v1alpha1.PluginDisabled
	if w, ok := t.(watchable); ok && on {
		if client, err := c.clients.Metadata(ctx, cl); err == nil {
			c.watches.ensure(cl, client, key, w, st.Applied)
		}
	} else if !on {
		c.watches.forget(cl.UID, key)
	}
	if c.volumes == nil || p.Spec.Type != catalog.CSI {
		return
	}
	if !on {
		c.volumes.Stop(cl.UID)
	} else if err := c.volumes.Ensure(ctx, cl); err != nil {
		klog.ErrorS(err, "Cannot run the volume provisioner", "cluster", klog.KObj(cl))
	}
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
		c.reportKept(p, &p.Status, kept)
	}
	key := p.Namespace + "/" + p.Name
	c.states.forget(key)
	if uid := types.UID(p.Annotations[v1alpha1.PluginClusterUIDAnnotation]); uid != "" {
		c.watches.forget(uid, key)
		if c.volumes != nil && p.Spec.Type == catalog.CSI {
			c.volumes.Stop(uid)
		}
	}
	p.Finalizers = slices.DeleteFunc(p.Finalizers, func(f string) bool { return f == v1alpha1.PluginFinalizer })
	if _, err := c.client.ContainerserviceV1alpha1().Plugins(p.Namespace).Update(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove the finalizer of %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// writeStatus writes the status when it changed, recording an Event on a phase change.
func (c *Controller) writeStatus(ctx context.Context, p *v1alpha1.Plugin, status *v1alpha1.PluginStatus) error {
	status.ObservedGeneration = p.Generation
	if statusEqual(&p.Status, status) {
		return nil
	}
	from := p.Status.Phase
	p.Status = *status
	if _, err := c.client.ContainerserviceV1alpha1().Plugins(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update the status of %s/%s: %w", p.Namespace, p.Name, err)
	}
	// Told once written: a write that met a newer Plugin is tried again, and said then.
	if status.Phase != from {
		klog.InfoS("Plugin phase", "plugin", klog.KObj(p), "from", from, "to", status.Phase)
		c.recorder.Eventf(p, corev1.EventTypeNormal, string(status.Phase), "plugin %s is %s", p.Name, status.Phase)
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
