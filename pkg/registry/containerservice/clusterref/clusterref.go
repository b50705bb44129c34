// Package clusterref checks, when an object that belongs to a cluster (a Node, a Plugin)
// is created, that its cluster exists in the object's namespace and is not being
// deleted: an object for no cluster would wait forever, and one for a cluster on its way
// out would be orphaned.
package clusterref

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"
)

// Checker looks clusters up in the registry's clusters store.
type Checker struct {
	Clusters rest.Getter
}

// Check returns the errors of the cluster name at fld, in the request's namespace.
func (c *Checker) Check(ctx context.Context, name string, fld *field.Path) field.ErrorList {
	if c == nil || c.Clusters == nil || name == "" {
		return nil
	}
	obj, err := c.Clusters.Get(ctx, name, &metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return field.ErrorList{field.NotFound(fld, name)}
	case err != nil:
		return field.ErrorList{field.InternalError(fld, fmt.Errorf("look up cluster %s: %w", name, err))}
	}
	if m, ok := obj.(metav1.Object); ok && m.GetDeletionTimestamp() != nil {
		return field.ErrorList{field.Invalid(fld, name, "the cluster is being deleted")}
	}
	return nil
}

// OnCreate is a registry References hook for a kind whose cluster is clusterName(obj):
// checked when an object is created (its cluster cannot change afterwards).
func OnCreate[T comparable](refs *Checker, clusterName func(T) string) func(ctx context.Context, obj, old T) field.ErrorList {
	return func(ctx context.Context, obj, old T) field.ErrorList {
		var none T
		if old != none {
			return nil
		}
		return refs.Check(ctx, clusterName(obj), field.NewPath("spec", "clusterName"))
	}
}
