package proxy

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// Target is who the proxy acts as inside a cluster for one caller.
type Target struct {
	// ServiceAccount is the caller's ServiceAccount in ucs-users.
	ServiceAccount string
	// Username is the caller's platform username.
	Username string
	// Groups are the caller's groups that the cluster's administrators or its projects'
	// members name: impersonated along with the ServiceAccount, so that bindings of those
	// groups apply. The proxy identity may impersonate exactly these group names.
	Groups []string
}

// Impersonated is the username the user cluster sees.
func (t Target) Impersonated() string {
	return v1alpha1.ServiceAccountUsername(t.Username)
}

// Decision is whether a caller may enter a cluster.
type Decision int

const (
	// Forbidden: the caller has no identity in the cluster.
	Forbidden Decision = iota
	// Allowed: the caller enters as the Target.
	Allowed
	// NotReady: a project names the caller, but its bindings are still being put in place.
	NotReady
)

// TargetFor decides, from our own objects alone, whether the caller has an identity
// inside the cluster: its administrators (users, and members of its administrator
// groups) do, and so do the members of the projects placed in it (members holds them).
// Everyone else has none and is refused before anything is forwarded. Built-in identities
// and groups (system:*) never count. A request into the namespace of a project that names
// the caller but has not put their bindings in place yet waits (NotReady), whatever
// other access the caller has: the cluster would refuse it for now.
func TargetFor(c *v1alpha1.Cluster, members *Members, caller user.Info, namespace string) (Target, Decision) {
	name := caller.GetName()
	if name == "" || strings.HasPrefix(name, v1alpha1.BuiltinPrefix) {
		return Target{}, Forbidden
	}
	var callerGroups []string
	for _, g := range caller.GetGroups() {
		if !v1alpha1.ReservedSubject(g) {
			callerGroups = append(callerGroups, g)
		}
	}
	admin, groups := false, sets.New[string]()
	for _, a := range c.Spec.Administrators {
		switch {
		case a.Kind == v1alpha1.SubjectKindUser && a.Name == name:
			admin = true
		case a.Kind == v1alpha1.SubjectKindGroup && slices.Contains(callerGroups, a.Name):
			admin = true
			groups.Insert(a.Name)
		}
	}
	var m Membership
	if members != nil {
		m = members.Lookup(c.Namespace, c.Name, name, callerGroups)
	}
	groups.Insert(m.Groups...)
	switch {
	case !admin && namespace != "" && slices.Contains(m.Pending, namespace):
		return Target{}, NotReady
	case admin || m.Member:
		return Target{ServiceAccount: v1alpha1.ServiceAccountName(name), Username: name, Groups: sets.List(groups)}, Allowed
	case len(m.Pending) > 0:
		return Target{}, NotReady
	}
	return Target{}, Forbidden
}
