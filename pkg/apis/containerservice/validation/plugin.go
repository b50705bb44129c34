package validation

import (
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

// maxPluginConfigBytes bounds a plugin's settings, which end up in objects of the user cluster.
const maxPluginConfigBytes = 64 * 1024

// ValidatePlugin checks a Plugin being created.
func ValidatePlugin(p *cs.Plugin) field.ErrorList {
	errs := validateObjectMeta(&p.ObjectMeta)
	return append(errs, validatePluginSpec(&p.Spec, field.NewPath("spec"))...)
}

// ValidatePluginUpdate checks a change of a Plugin's spec and metadata.
func ValidatePluginUpdate(p, old *cs.Plugin) field.ErrorList {
	errs := validateObjectMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
	specPath := field.NewPath("spec")
	errs = append(errs, validatePluginSpec(&p.Spec, specPath)...)
	errs = append(errs, validateImmutable(p.Spec.ClusterName, old.Spec.ClusterName, specPath.Child("clusterName"))...)
	return append(errs, validateImmutable(p.Spec.Type, old.Spec.Type, specPath.Child("type"))...)
}

// ValidatePluginStatusUpdate checks what a status writer reports.
func ValidatePluginStatusUpdate(p, old *cs.Plugin) field.ErrorList {
	errs := validateObjectMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
	fld := field.NewPath("status")
	errs = append(errs, validateConditions(p.Status.Conditions, fld.Child("conditions"))...)
	return append(errs, validateObservedGeneration(p.Status.ObservedGeneration, fld.Child("observedGeneration"))...)
}

func validatePluginSpec(spec *cs.PluginSpec, fld *field.Path) field.ErrorList {
	errs := validateClusterRef(spec.ClusterName, fld.Child("clusterName"))
	// The type, version and settings are checked against the catalog by the registry
	// (pkg/registry/containerservice/plugin), which knows it.
	if spec.Type == "" {
		errs = append(errs, field.Required(fld.Child("type"), "one of the catalog's types"))
	}
	if spec.Enabled == nil {
		errs = append(errs, field.Required(fld.Child("enabled"), ""))
	}
	size := 0
	for k, v := range spec.Config {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(fld.Child("config").Key(k), k, msg))
		}
		size += len(k) + len(v)
	}
	if size > maxPluginConfigBytes {
		errs = append(errs, field.TooLong(fld.Child("config"), "", maxPluginConfigBytes))
	}
	return errs
}
