package validation

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

// Bounds of an admin kubeconfig's lifetime: long enough to be useful, short enough that
// a leaked one soon stops working.
const (
	MinAdminKubeconfigSeconds = 600
	MaxAdminKubeconfigSeconds = 86400
)

// ValidateAdminKubeconfigRequest checks a request for an admin kubeconfig.
func ValidateAdminKubeconfigRequest(r *cs.AdminKubeconfigRequest) field.ErrorList {
	var errs field.ErrorList
	fld := field.NewPath("spec")
	if s := r.Spec.ExpirationSeconds; s == nil {
		errs = append(errs, field.Required(fld.Child("expirationSeconds"), ""))
	} else if *s < MinAdminKubeconfigSeconds || *s > MaxAdminKubeconfigSeconds {
		errs = append(errs, field.Invalid(fld.Child("expirationSeconds"), *s,
			fmt.Sprintf("must be between %d (10 minutes) and %d (24 hours)", MinAdminKubeconfigSeconds, MaxAdminKubeconfigSeconds)))
	}
	switch r.Spec.Endpoint {
	case cs.EndpointInternal, cs.EndpointExternal:
	default:
		errs = append(errs, field.NotSupported(fld.Child("endpoint"), r.Spec.Endpoint, []cs.AdminKubeconfigEndpoint{cs.EndpointInternal, cs.EndpointExternal}))
	}
	return errs
}
