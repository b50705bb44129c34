package plugin

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/reconciler"
)

var driftRepairs = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace: "containerservice", Subsystem: "plugin", Name: "drift_repairs_total",
	Help: "Objects of add-ons put back after someone changed or deleted them inside a user cluster, by add-on type.", StabilityLevel: metrics.ALPHA,
}, []string{"type"})

func init() { legacyregistry.MustRegister(driftRepairs) }

// watches follow the add-ons' objects inside each user cluster, so that one deleted or
// changed there is put back within a second or two rather than at the next full look.
// Per cluster, one metadata-only watch per kind that some Plugin's inventory holds,
// selected by the plugin label (metadata alone: a definition's schema is never held in
// memory); a kind no Plugin holds any more is no longer watched. The watches of a
// cluster are replaced when its client changes (a credential rotation) and stopped when
// it goes.
type watches struct {
	mu sync.Mutex
	// ctx is the controller's run context; nil until Run (then nothing is watched).
	ctx       context.Context
	byCluster map[types.UID]*clusterWatches
	// changed records an event of an object of a Plugin (key namespace/name) in a
	// cluster; it reports whether the Plugin should be looked at.
	changed func(key string, cluster types.UID, o v1alpha1.AppliedObject, resourceVersion string) bool
	// enqueue queues a Plugin a moment later, so that a burst of events is one look.
	enqueue func(key string)
	// stopped are the clusters that went lately: a reconcile that read one just before
	// must not watch it again.
	stopped goneClusters
}

type clusterWatches struct {
	client metadata.Interface
	kinds  map[schema.GroupVersionResource]*kindWatch
}

type kindWatch struct {
	cancel context.CancelFunc
	// users are the Plugins (namespace/name) whose inventory holds the kind.
	users map[string]bool
}

func newWatches(changed func(string, types.UID, v1alpha1.AppliedObject, string) bool, enqueue func(string)) *watches {
	return &watches{byCluster: map[types.UID]*clusterWatches{}, changed: changed, enqueue: enqueue, stopped: goneClusters{}}
}

// start lets watches run for as long as ctx.
func (w *watches) start(ctx context.Context) {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
}

// ensure watches, for the Plugin key of cluster cl, the kinds of its inventory, and no
// longer the kinds it held before and no other Plugin holds.
func (w *watches) ensure(cl *v1alpha1.Cluster, client metadata.Interface, key string, t watchable, inventory []v1alpha1.AppliedObject) {
	want := map[schema.GroupVersionResource]v1alpha1.AppliedObject{}
	for _, o := range inventory {
		gvr, err := t.Resource(o)
		if err != nil {
			klog.V(2).InfoS("Cannot watch a kind of an add-on", "cluster", klog.KObj(cl), "kind", o.Kind, "err", err)
			continue
		}
		want[gvr] = v1alpha1.AppliedObject{APIVersion: o.APIVersion, Kind: o.Kind}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx == nil || w.stopped.has(cl.UID) {
		return
	}
	cw := w.byCluster[cl.UID]
	if cw != nil && cw.client != client {
		// A new credential: every watch of the cluster starts again, and every Plugin that
		// had one is looked at, to watch its kinds again.
		for _, kw := range cw.kinds {
			kw.cancel()
			for user := range kw.users {
				if user != key {
					w.enqueue(user)
				}
			}
		}
		cw = nil
	}
	if cw == nil {
		cw = &clusterWatches{client: client, kinds: map[schema.GroupVersionResource]*kindWatch{}}
		w.byCluster[cl.UID] = cw
	}
	for gvr, kw := range cw.kinds {
		if _, ok := want[gvr]; !ok {
			w.release(cw, gvr, kw, key)
		}
	}
	for gvr, kind := range want {
		kw := cw.kinds[gvr]
		if kw == nil {
			kw = w.watch(cl, client, gvr, kind)
			cw.kinds[gvr] = kw
		}
		kw.users[key] = true
	}
}

// forget stops watching for the Plugin key in cluster uid.
func (w *watches) forget(uid types.UID, key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cw := w.byCluster[uid]; cw != nil {
		for gvr, kw := range cw.kinds {
			w.release(cw, gvr, kw, key)
		}
	}
}

// stop ends every watch of a cluster that goes, for good.
func (w *watches) stop(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped.add(uid, time.Now())
	if cw := w.byCluster[uid]; cw != nil {
		for _, kw := range cw.kinds {
			kw.cancel()
		}
		delete(w.byCluster, uid)
	}
}

func (w *watches) release(cw *clusterWatches, gvr schema.GroupVersionResource, kw *kindWatch, key string) {
	delete(kw.users, key)
	if len(kw.users) == 0 {
		kw.cancel()
		delete(cw.kinds, gvr)
	}
}

// watch starts the metadata watch of one kind in a cluster; w.mu is held. It is a
// reflector without an informer: nothing reads a cache of these objects (a reconcile reads
// the cluster), so what an informer adds per kind and cluster (a store of every object, an
// event queue of 1024 slots per handler, three more goroutines) would be memory spent for
// nothing, times every kind of every add-on of every cluster.
func (w *watches) watch(cl *v1alpha1.Cluster, client metadata.Interface, gvr schema.GroupVersionResource, kind v1alpha1.AppliedObject) *kindWatch {
	ctx, cancel := context.WithCancel(w.ctx)
	ns := cl.Namespace
	handle := func(o objectRef, deleted bool) {
		ref := kind
		ref.Namespace, ref.Name = o.namespace, o.name
		rv := o.resourceVersion
		if deleted {
			rv = ""
		}
		if key := ns + "/" + o.plugin; w.changed(key, cl.UID, ref, rv) {
			w.enqueue(key)
		}
	}
	resource := client.Resource(gvr)
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = v1alpha1.PluginLabel
			return resource.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = v1alpha1.PluginLabel
			return resource.Watch(ctx, o)
		},
	}, client)
	r := cache.NewReflectorWithOptions(lw, &metav1.PartialObjectMetadata{}, &events{handle: handle, seen: map[string]objectRef{}},
		cache.ReflectorOptions{Name: "add-ons " + gvr.String() + " in " + cl.Namespace + "/" + cl.Name})
	go r.RunWithContext(ctx)
	klog.V(2).InfoS("Watching the objects of add-ons", "cluster", klog.KObj(cl), "resource", gvr)
	return &kindWatch{cancel: cancel, users: map[string]bool{}}
}

// objectRef is what a watch keeps of an object of an add-on.
type objectRef struct {
	namespace, name, plugin, resourceVersion string
}

// events is a reflector's store that holds no objects: it hands each add, change and
// delete on, and keeps per object only what a relist needs to report one deleted while
// the watch was down. The reflector calls it from one goroutine.
type events struct {
	handle func(o objectRef, deleted bool)
	seen   map[string]objectRef
}

func (e *events) ref(obj any) (string, objectRef, bool) {
	m, ok := reconciler.Object[*metav1.PartialObjectMetadata](obj)
	if !ok || m.Labels[v1alpha1.PluginLabel] == "" {
		return "", objectRef{}, false
	}
	o := objectRef{namespace: m.Namespace, name: m.Name, plugin: m.Labels[v1alpha1.PluginLabel], resourceVersion: m.ResourceVersion}
	return m.Namespace + "/" + m.Name, o, true
}

func (e *events) Add(obj any) error {
	if k, o, ok := e.ref(obj); ok {
		e.seen[k] = o
		e.handle(o, false)
	}
	return nil
}

func (e *events) Update(obj any) error { return e.Add(obj) }

func (e *events) Delete(obj any) error {
	if k, o, ok := e.ref(obj); ok {
		delete(e.seen, k)
		e.handle(o, true)
	}
	return nil
}

// Replace is a relist: every object listed is an add, every one seen before and not
// listed now a delete.
func (e *events) Replace(list []any, _ string) error {
	before := e.seen
	e.seen = make(map[string]objectRef, len(list))
	for _, obj := range list {
		if k, o, ok := e.ref(obj); ok {
			e.seen[k] = o
			delete(before, k)
			e.handle(o, false)
		}
	}
	for _, o := range before {
		e.handle(o, true)
	}
	return nil
}

func (e *events) Resync() error { return nil }
