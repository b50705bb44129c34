package proxy

import (
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/bootstrap"
	"github.com/ucloudstack/containerservice/pkg/provisioner/identity"
)

// UsernameExtra is the impersonated extra that carries the caller's platform username
// into the user cluster, so that its audit log names the person behind a ServiceAccount.
const UsernameExtra = bootstrap.UsernameExtra

// Target is who the proxy acts as inside a cluster for one caller.
type Target struct {
	// ServiceAccount is the caller's ServiceAccount in ucs-users.
	ServiceAccount string
	// Username is the caller's platform username.
	Username string
}

// Impersonated is the username the user cluster sees.
func (t Target) Impersonated() string {
	return "system:serviceaccount:" + identity.UsersNamespace + ":" + t.ServiceAccount
}

// TargetFor decides, from the Cluster alone, whether the caller has an identity inside
// it: administrators named as users do (their ServiceAccount is bound to cluster-admin).
// Everyone else has none and is refused before anything is forwarded. Built-in
// identities (system:*) never have one.
func TargetFor(c *v1alpha1.Cluster, caller user.Info) (Target, bool) {
	name := caller.GetName()
	if name == "" || strings.HasPrefix(name, "system:") {
		return Target{}, false
	}
	for _, a := range c.Spec.Administrators {
		if a.Kind == v1alpha1.SubjectKindUser && a.Name == name {
			return Target{ServiceAccount: identity.ServiceAccountName(name), Username: name}, true
		}
	}
	return Target{}, false
}
