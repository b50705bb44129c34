package validation

import (
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

var (
	projectRoles             = sets.New(string(cs.ProjectRoleAdmin), string(cs.ProjectRoleEdit), string(cs.ProjectRoleView))
	projectNamespacePolicies = sets.New(string(cs.ProjectNamespaceRetain), string(cs.ProjectNamespaceDelete))
)

// ValidateProject checks a Project being created.
func ValidateProject(p *cs.Project) field.ErrorList {
	errs := validateObjectMeta(&p.ObjectMeta)
	return append(errs, validateProjectSpec(&p.Spec, field.NewPath("spec"))...)
}

// ValidateProjectUpdate checks a change of a Project's spec and metadata.
func ValidateProjectUpdate(p, old *cs.Project) field.ErrorList {
	errs := validateObjectMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateProjectSpec(&p.Spec, field.NewPath("spec"))...)
	return append(errs, validateImmutable(p.Spec.Namespace, old.Spec.Namespace, field.NewPath("spec", "namespace"))...)
}

// ValidateProjectStatusUpdate checks what a status writer reports.
func ValidateProjectStatusUpdate(p, old *cs.Project) field.ErrorList {
	errs := validateObjectMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
	fld := field.NewPath("status")
	errs = append(errs, validateConditions(p.Status.Conditions, fld.Child("conditions"))...)
	errs = append(errs, validateObservedGeneration(p.Status.ObservedGeneration, fld.Child("observedGeneration"))...)
	for i, c := range p.Status.Clusters {
		errs = append(errs, validateClusterRef(c.Name, fld.Child("clusters").Index(i).Child("name"))...)
	}
	return errs
}

func validateProjectSpec(spec *cs.ProjectSpec, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	clusters := sets.New[string]()
	for i, c := range spec.Clusters {
		p := fld.Child("clusters").Index(i)
		errs = append(errs, validateClusterRef(c, p)...)
		if clusters.Has(c) {
			errs = append(errs, field.Duplicate(p, c))
		}
		clusters.Insert(c)
	}

	nsPath := fld.Child("namespace")
	switch {
	case spec.Namespace == "":
		errs = append(errs, field.Required(nsPath, ""))
	case v1alpha1.ReservedNamespace(spec.Namespace):
		errs = append(errs, field.Forbidden(nsPath, "namespace "+spec.Namespace+" is reserved"))
	default:
		for _, msg := range apivalidation.ValidateNamespaceName(spec.Namespace, false) {
			errs = append(errs, field.Invalid(nsPath, spec.Namespace, msg))
		}
	}

	if !projectNamespacePolicies.Has(string(spec.NamespacePolicy)) {
		errs = append(errs, field.NotSupported(fld.Child("namespacePolicy"), spec.NamespacePolicy, sets.List(projectNamespacePolicies)))
	}

	members := sets.New[cs.Subject]()
	for i, m := range spec.Members {
		p := fld.Child("members").Index(i)
		errs = append(errs, validateSubjectKind(m.Kind, p.Child("kind"))...)
		errs = append(errs, validateSubjectName(m.Name, p.Child("name"))...)
		if !projectRoles.Has(string(m.Role)) {
			errs = append(errs, field.NotSupported(p.Child("role"), m.Role, sets.List(projectRoles)))
		}
		s := cs.Subject{Kind: m.Kind, Name: m.Name}
		if members.Has(s) {
			errs = append(errs, field.Duplicate(p, m.Name))
		}
		members.Insert(s)
	}
	return errs
}
