// Package authn authenticates callers of containerservice-apiserver with OIDC ID tokens,
// configured the way Kubernetes administrators already know: the JWT authenticators of
// an apiserver.config.k8s.io AuthenticationConfiguration file, the very file the host
// kube-apiserver may be given, so that a person gets the same identity through the host
// and straight at our server. Tokens are verified with github.com/coreos/go-oidc/v3.
package authn

import (
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	apiserver "k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/apis/apiserver/install"
	"k8s.io/apiserver/pkg/apis/apiserver/validation"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
)

// Issuer is one trusted OIDC issuer and how its tokens map to users.
type Issuer struct {
	// URL is the issuer (the tokens' iss); discovery is at URL/.well-known/openid-configuration.
	URL string
	// Audiences are accepted aud values; a token must carry one of them.
	Audiences []string
	// CA is the PEM bundle that verifies the issuer's TLS certificate; empty means the
	// system roots.
	CA []byte
	// UsernameClaim and UsernamePrefix make the username; GroupsClaim (may be empty)
	// and GroupsPrefix the groups; UIDClaim (may be empty) the uid.
	UsernameClaim, UsernamePrefix string
	GroupsClaim, GroupsPrefix     string
	UIDClaim                      string
	// Required are claims that must hold the given value.
	Required map[string]string
}

// LoadConfig reads and validates an AuthenticationConfiguration file (any version the
// apiserver.config.k8s.io group has), keeping its JWT authenticators. What this server
// does not implement (CEL expressions, extra mappings, user validation rules, a separate
// discovery URL, egress selection, anonymous configuration) is refused with the field
// named, never ignored. Names beginning "system:" are always refused, whatever the file.
func LoadConfig(path string) ([]Issuer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the authentication configuration: %w", err)
	}
	scheme := runtime.NewScheme()
	install.Install(scheme)
	obj, _, err := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	cfg, ok := obj.(*apiserver.AuthenticationConfiguration)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, not an AuthenticationConfiguration", path, obj)
	}
	errs := validation.ValidateAuthenticationConfiguration(authenticationcel.NewDefaultCompiler(), cfg, nil)
	errs = append(errs, unsupported(cfg)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", path, errs.ToAggregate())
	}
	issuers := make([]Issuer, 0, len(cfg.JWT))
	for _, j := range cfg.JWT {
		is := Issuer{
			URL:           j.Issuer.URL,
			Audiences:     j.Issuer.Audiences,
			CA:            []byte(j.Issuer.CertificateAuthority),
			UsernameClaim: j.ClaimMappings.Username.Claim,
			GroupsClaim:   j.ClaimMappings.Groups.Claim,
			UIDClaim:      j.ClaimMappings.UID.Claim,
			Required:      map[string]string{},
		}
		if p := j.ClaimMappings.Username.Prefix; p != nil {
			is.UsernamePrefix = *p
		}
		if p := j.ClaimMappings.Groups.Prefix; p != nil {
			is.GroupsPrefix = *p
		}
		for _, r := range j.ClaimValidationRules {
			is.Required[r.Claim] = r.RequiredValue
		}
		issuers = append(issuers, is)
	}
	return issuers, nil
}

func unsupported(cfg *apiserver.AuthenticationConfiguration) field.ErrorList {
	var errs field.ErrorList
	const why = "not supported by containerservice-apiserver"
	if cfg.Anonymous != nil {
		errs = append(errs, field.Forbidden(field.NewPath("anonymous"), why))
	}
	for i, j := range cfg.JWT {
		p := field.NewPath("jwt").Index(i)
		if j.Issuer.DiscoveryURL != "" {
			errs = append(errs, field.Forbidden(p.Child("issuer", "discoveryURL"), why))
		}
		if j.Issuer.EgressSelectorType != "" {
			errs = append(errs, field.Forbidden(p.Child("issuer", "egressSelectorType"), why))
		}
		if !strings.HasPrefix(j.Issuer.URL, "https://") {
			errs = append(errs, field.Invalid(p.Child("issuer", "url"), j.Issuer.URL, "must be https"))
		}
		m := p.Child("claimMappings")
		for name, e := range map[string]string{"username": j.ClaimMappings.Username.Expression, "groups": j.ClaimMappings.Groups.Expression, "uid": j.ClaimMappings.UID.Expression} {
			if e != "" {
				errs = append(errs, field.Forbidden(m.Child(name, "expression"), why+": use claim and prefix"))
			}
		}
		if len(j.ClaimMappings.Extra) > 0 {
			errs = append(errs, field.Forbidden(m.Child("extra"), why))
		}
		for k, r := range j.ClaimValidationRules {
			if r.Expression != "" {
				errs = append(errs, field.Forbidden(p.Child("claimValidationRules").Index(k).Child("expression"), why+": use claim and requiredValue"))
			}
		}
		if len(j.UserValidationRules) > 0 {
			errs = append(errs, field.Forbidden(p.Child("userValidationRules"), why+" (names starting with system: are always refused)"))
		}
	}
	return errs
}
