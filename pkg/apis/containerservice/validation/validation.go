// Package validation checks containerservice objects and names every offending field.
package validation

import (
	"strings"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// validateObjectMeta checks the metadata of a namespaced object whose name ends up in
// user clusters, file names and port allocations, hence a DNS-1123 label.
func validateObjectMeta(meta *metav1.ObjectMeta) field.ErrorList {
	return apivalidation.ValidateObjectMeta(meta, true, apivalidation.NameIsDNSLabel, field.NewPath("metadata"))
}

// validateObjectMetaUpdate checks metadata changes (immutable name, namespace, uid, …).
func validateObjectMetaUpdate(meta, old *metav1.ObjectMeta) field.ErrorList {
	return apivalidation.ValidateObjectMetaUpdate(meta, old, field.NewPath("metadata"))
}

// validateSubjectName refuses empty names and names of built-in identities.
func validateSubjectName(name string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case strings.TrimSpace(name) == "":
		errs = append(errs, field.Required(fld, ""))
	case strings.HasPrefix(name, v1alpha1.BuiltinPrefix):
		// The built-in identities of every Kubernetes cluster (system:masters,
		// system:serviceaccount:…, system:nodes, …): a tenant who could name one as an
		// administrator or project member would be granted rights over the cluster's own
		// components.
		errs = append(errs, field.Forbidden(fld, "names starting with \""+v1alpha1.BuiltinPrefix+"\" are reserved for the cluster's own identities"))
	case strings.HasPrefix(name, v1alpha1.PlatformPrefix):
		// The platform's own identities in user clusters (ucs:proxy, ucs:breakglass, which
		// is bound to cluster-admin): a subject by that name would let the proxy pass it on.
		errs = append(errs, field.Forbidden(fld, "names starting with \""+v1alpha1.PlatformPrefix+"\" are reserved for the platform's own identities"))
	}
	return errs
}

var subjectKinds = sets.New(string(cs.SubjectKindUser), string(cs.SubjectKindGroup))

func validateSubjectKind(kind cs.SubjectKind, fld *field.Path) field.ErrorList {
	if kind == "" {
		return field.ErrorList{field.Required(fld, "")}
	}
	if !subjectKinds.Has(string(kind)) {
		return field.ErrorList{field.NotSupported(fld, kind, sets.List(subjectKinds))}
	}
	return nil
}

// validateClusterRef checks a reference to a Cluster of the same namespace.
func validateClusterRef(name string, fld *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fld, "")}
	}
	var errs field.ErrorList
	for _, msg := range apivalidation.NameIsDNSLabel(name, false) {
		errs = append(errs, field.Invalid(fld, name, msg))
	}
	return errs
}

// validateImmutable reports fld as immutable when the value changed.
func validateImmutable(newVal, oldVal any, fld *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, fld)
}

// validateConditions checks the conditions a status writer reports.
func validateConditions(conditions []metav1.Condition, fld *field.Path) field.ErrorList {
	return metav1validation.ValidateConditions(conditions, fld)
}

// validateObservedGeneration refuses negative generations.
func validateObservedGeneration(gen int64, fld *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(gen, fld)
}
