package plugin

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// Target is a user cluster as the controller sees it: objects of any kind by reference.
type Target interface {
	// Get returns the object, or nil when there is none.
	Get(ctx context.Context, o v1alpha1.AppliedObject) (*unstructured.Unstructured, error)
	// Apply server-side applies the object as the platform's field manager.
	Apply(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error)
	// Delete deletes the object if it carries the plugin's label (its UID a precondition),
	// and does nothing when it is gone or not the plugin's.
	Delete(ctx context.Context, o v1alpha1.AppliedObject, plugin string) error
}

// dynamicTarget reaches the cluster through the driver's access, with the cluster's
// discovery mapping kinds to resources.
func (c *Controller) dynamicTarget(ctx context.Context, cl *v1alpha1.Cluster) (Target, error) {
	client, mapper, err := c.clients.Dynamic(ctx, cl)
	if err != nil {
		return nil, err
	}
	return &dynamicCluster{client: client, mapper: mapper}, nil
}

type dynamicCluster struct {
	client dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// resource maps the object's kind, reading discovery again once when the kind is new (a
// definition applied a moment ago).
func (d *dynamicCluster) resource(o v1alpha1.AppliedObject) (dynamic.ResourceInterface, error) {
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
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return d.client.Resource(mapping.Resource).Namespace(o.Namespace), nil
	}
	return d.client.Resource(mapping.Resource), nil
}

func (d *dynamicCluster) Get(ctx context.Context, o v1alpha1.AppliedObject) (*unstructured.Unstructured, error) {
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

func (d *dynamicCluster) Apply(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
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
	cur, err := r.Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
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
