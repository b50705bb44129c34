package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/restmapper"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// Target is a user cluster as the controller sees it: objects of any kind by reference.
type Target interface {
	// Get returns the object, or nil when there is none.
	Get(ctx context.Context, o v1alpha1.AppliedObject) (*unstructured.Unstructured, error)
	// Meta returns the object's metadata alone, or nil when there is none.
	Meta(ctx context.Context, o v1alpha1.AppliedObject) (*metav1.PartialObjectMetadata, error)
	// Apply server-side applies the object as the platform's field manager.
	Apply(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error)
	// Delete deletes the object if it carries the plugin's label (its UID a precondition),
	// and does nothing when it is gone or not the plugin's.
	Delete(ctx context.Context, o v1alpha1.AppliedObject, plugin string) error
	// Instance names an object of the kinds a CustomResourceDefinition defines, or ""
	// when it has none (or is gone).
	Instance(ctx context.Context, crd string) (string, error)
	// Foreign names an object in the namespace that the plugin did not make and nothing
	// made on its behalf (see foreign), or "" when there is none.
	Foreign(ctx context.Context, namespace, plugin string) (string, error)
}

// watchable is a Target whose kinds can be watched: the resource of an object's kind.
type watchable interface {
	Resource(o v1alpha1.AppliedObject) (schema.GroupVersionResource, error)
}

// dynamicTarget reaches the cluster through the driver's access, with the cluster's
// discovery mapping kinds to resources.
func (c *Controller) dynamicTarget(ctx context.Context, cl *v1alpha1.Cluster) (Target, error) {
	client, mapper, err := c.clients.Dynamic(ctx, cl)
	if err != nil {
		return nil, err
	}
	md, err := c.clients.Metadata(ctx, cl)
	if err != nil {
		return nil, err
	}
	typed, err := c.clients.For(ctx, cl)
	if err != nil {
		return nil, err
	}
	return &dynamicCluster{client: client, mapper: mapper, metadata: md, discovery: typed.Discovery()}, nil
}

type dynamicCluster struct {
	client   dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	metadata metadata.Interface
	// discovery lists the cluster's kinds (a namespace's content is looked for in each).
	discovery discovery.DiscoveryInterface
}

// mapping maps the object's kind, reading discovery again once when the kind is new (a
// definition applied a moment ago).
func (d *dynamicCluster) mapping(o v1alpha1.AppliedObject) (*meta.RESTMapping, error) {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return nil, err
	}
	gk := schema.GroupKind{Group: gv.Group, Kind: o.Kind}
	mapping, err := d.mapper.RESTMapping(gk, gv.Version)
	if meta.IsNoMatchError(err) {
		d.mapper.Reset()
		mapping, err = d.mapper.RESTMapping(gk, gv.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", gk, err)
	}
	return mapping, nil
}

func (d *dynamicCluster) Resource(o v1alpha1.AppliedObject) (schema.GroupVersionResource, error) {
	mapping, err := d.mapping(o)
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	return mapping.Resource, nil
}

func (d *dynamicCluster) resource(o v1alpha1.AppliedObject) (dynamic.ResourceInterface, error) {
	mapping, err := d.mapping(o)
	if err != nil {
		return nil, err
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return d.client.Resource(mapping.Resource).Namespace(o.Namespace), nil
	}
	return d.client.Resource(mapping.Resource), nil
}

func (d *dynamicCluster) Get(ctx context.Context, o v1alpha1.AppliedObject) (*unstructured.Unstructured, error) {
	if isDefinition(o) {
		got, err := d.getDefinition(ctx, o.Name)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return got, err
	}
	r, err := d.resource(o)
	if meta.IsNoMatchError(err) {
		return nil, nil // its kind is not served yet (a definition applied later): no object
	}
	if err != nil {
		return nil, err
	}
	got, err := r.Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return got, err
}

// metaTimeout bounds a read of metadata (the metadata client has no bound of its own: it
// also serves watches).
const metaTimeout = 30 * time.Second

func (d *dynamicCluster) Meta(ctx context.Context, o v1alpha1.AppliedObject) (*metav1.PartialObjectMetadata, error) {
	mapping, err := d.mapping(o)
	if meta.IsNoMatchError(err) {
		return nil, nil // its kind is not served yet (a definition applied later): no object
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	r := d.metadata.Resource(mapping.Resource)
	var got *metav1.PartialObjectMetadata
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		got, err = r.Namespace(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
	} else {
		got, err = r.Get(ctx, o.Name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return got, err
}

func (d *dynamicCluster) Apply(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if isDefinition(ref(o)) {
		return d.applyDefinition(ctx, o)
	}
	r, err := d.resource(ref(o))
	if err != nil {
		return nil, err
	}
	return r.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: v1alpha1.PluginFieldManager, Force: true})
}

func (d *dynamicCluster) Delete(ctx context.Context, o v1alpha1.AppliedObject, plugin string) error {
	r, err := d.resource(o)
	if meta.IsNoMatchError(err) {
		return nil // its kind is gone, and the object with it
	}
	if err != nil {
		return err
	}
	// Its metadata says whose it is: a definition's schema is not read.
	cur, err := d.Meta(ctx, o)
	if err != nil {
		return err
	}
	if cur == nil {
		return nil
	}
	if cur.GetLabels()[v1alpha1.PluginLabel] != plugin {
		return nil // someone else's now: never ours to delete
	}
	uid := cur.GetUID()
	err = r.Delete(ctx, o.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

var crdKind = v1alpha1.AppliedObject{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"}

func (d *dynamicCluster) Instance(ctx context.Context, crd string) (string, error) {
	o := crdKind
	o.Name = crd
	def, err := d.Get(ctx, o)
	if def == nil || err != nil {
		return "", err
	}
	group, _, _ := unstructured.NestedString(def.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(def.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(def.Object, "spec", "versions")
	// The metadata client has no bound of its own: a kind whose list never answers (a
	// conversion webhook of the tenant's) must not hold a worker.
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	for _, v := range versions {
		v, _ := v.(map[string]any)
		if served, _ := v["served"].(bool); !served {
			continue
		}
		name, _ := v["name"].(string)
		list, err := d.metadata.Resource(schema.GroupVersionResource{Group: group, Version: name, Resource: plural}).List(ctx, metav1.ListOptions{Limit: 1})
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("list %s.%s: %w", plural, group, err)
		}
		if len(list.Items) > 0 {
			return describeMeta(plural, &list.Items[0]), nil
		}
		return "", nil // every served version lists the same objects
	}
	return "", nil
}

// foreignScan bounds how many objects of one kind are looked at in a namespace: more is
// taken for something of someone else's (the namespace is kept).
const foreignScan = 500

// foreignTimeout bounds the look into a namespace (a tenant's aggregated API that never
// answers must not hold a worker): a look that does not end keeps the namespace.
const foreignTimeout = 30 * time.Second

func (d *dynamicCluster) Foreign(ctx context.Context, namespace, plugin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, foreignTimeout)
	defer cancel()
	lists, err := d.discovery.ServerPreferredNamespacedResources()
	if err != nil {
		// A group that does not answer may hold anything there: the namespace stays.
		return fmt.Sprintf("objects of kinds that cannot be listed (%v)", err), nil
	}
	var objs []nsObject
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if !slices.Contains(r.Verbs, "list") || strings.Contains(r.Name, "/") {
				continue
			}
			got, err := d.metadata.Resource(gv.WithResource(r.Name)).Namespace(namespace).List(ctx, metav1.ListOptions{Limit: foreignScan})
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				return fmt.Sprintf("%s that cannot be listed (%v)", r.Name, err), nil
			}
			if got.Continue != "" {
				return fmt.Sprintf("more than %d %s", foreignScan, r.Name), nil
			}
			for i := range got.Items {
				objs = append(objs, nsObject{group: gv.Group, kind: r.Kind, resource: r.Name, meta: &got.Items[i]})
			}
		}
	}
	if o := firstForeign(objs, plugin); o != nil {
		return describeMeta(o.resource, o.meta), nil
	}
	return "", nil
}
