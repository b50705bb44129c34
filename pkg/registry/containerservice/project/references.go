package project

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

// References checks what a Project says about other objects: that the clusters it
// names exist in its namespace (a tenant's project cannot name another tenant's cluster),
// and that no other project already places the same namespace in one of them. The
// projects' storage (pkg/registry/containerservice/project/storage) sets both as it
// builds itself, before anything is served.
type References struct {
	Clusters rest.Getter
	Projects rest.Lister
}

// Check runs on create (old nil) and on spec changes; clusters the project already named
// are not looked up again, so that a deleted cluster does not block unrelated edits.
func (r *References) Check(ctx context.Context, p, old *cs.Project) field.ErrorList {
	if r == nil || r.Clusters == nil || r.Projects == nil {
		return nil
	}
	var errs field.ErrorList
	fld := field.NewPath("spec")
	var named sets.Set[string]
	if old != nil {
		named = sets.New(old.Spec.Clusters...)
	}
	for i, name := range p.Spec.Clusters {
		if named.Has(name) {
			continue
		}
		_, err := r.Clusters.Get(ctx, name, &metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			errs = append(errs, field.NotFound(fld.Child("clusters").Index(i), name))
		case err != nil:
			errs = append(errs, field.InternalError(fld.Child("clusters").Index(i), fmt.Errorf("look up cluster %s: %w", name, err)))
		}
	}
	list, err := r.Projects.List(ctx, &metainternalversion.ListOptions{})
	if err != nil {
		return append(errs, field.InternalError(fld.Child("namespace"), fmt.Errorf("list projects: %w", err)))
	}
	for _, other := range list.(*cs.ProjectList).Items {
		if other.Name == p.Name {
			continue
		}
		// A project holds a namespace in a cluster it asks for, and in one it is still
		// leaving (its status lists it until its bindings there are gone).
		held := sets.New[string]()
		if other.Spec.Namespace == p.Spec.Namespace {
			held.Insert(other.Spec.Clusters...)
		}
		for _, placed := range other.Status.Clusters {
			if placed.Namespace == p.Spec.Namespace {
				held.Insert(placed.Name)
			}
		}
		for i, c := range p.Spec.Clusters {
			if held.Has(c) {
				errs = append(errs, field.Duplicate(fld.Child("clusters").Index(i),
					fmt.Sprintf("%s: project %s already places namespace %s in cluster %s", c, other.Name, p.Spec.Namespace, c)))
			}
		}
	}
	return errs
}
