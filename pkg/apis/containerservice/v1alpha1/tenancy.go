package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// The tenancy vocabulary (docs/design.md, security model, rules 3 to 5): the names the platform
// uses inside user clusters and for its own identities. Clients, the proxy, the
// controllers and validation all take them from here, so that a name reserved in one
// place is reserved everywhere.
const (
	// UsersNamespace holds one ServiceAccount per user who may enter a user cluster.
	UsersNamespace = "ucs-users"
	// SystemNamespace holds the platform's own objects in a user cluster.
	SystemNamespace = "ucs-system"
	// PlatformNamespacePrefix starts every namespace the platform reserves in a user
	// cluster: a Project cannot place a namespace of that name.
	PlatformNamespacePrefix = "ucs-"

	// PlatformPrefix starts the names of the platform's own identities (users and groups)
	// in user clusters; no tenant subject may carry it, and the proxy never impersonates it.
	PlatformPrefix = "ucs:"
	// BuiltinPrefix starts Kubernetes' own users and groups (system:masters,
	// system:serviceaccount:…); the platform never grants or impersonates them for a caller.
	BuiltinPrefix = "system:"

	// ProxyUser is the identity the tenant proxy presents to user clusters.
	ProxyUser = PlatformPrefix + "proxy"
	// PlatformManagerUser puts the platform's objects into user clusters (namespaces,
	// permission groups, ServiceAccounts, bindings); it is cluster-admin there.
	PlatformManagerUser = PlatformPrefix + "platform-manager"
	// NodeAgentUser is the identity of the agent that keeps a cluster's nodes (kwok on the
	// local driver): it may read and report on nodes and pods, and evict nothing else.
	NodeAgentUser = PlatformPrefix + "node-agent"

	// BreakGlassUserPrefix starts the username of every break-glass (adminkubeconfig)
	// credential, followed by the name of the host user who asked for it, so that a user
	// cluster's audit log names the person.
	BreakGlassUserPrefix = PlatformPrefix + "breakglass:"
	// BreakGlassGroup is the group of every break-glass credential. The ClusterRoleBinding
	// of the same name binds it to cluster-admin inside each user cluster: deleting that
	// binding revokes every break-glass credential of the cluster at once, without a
	// rotation, and the platform does not put it back.
	BreakGlassGroup = PlatformPrefix + "breakglass"

	// UsernameKey carries the platform username of a person inside a user cluster: the
	// annotation on their ServiceAccount in UsersNamespace, and the impersonated user extra
	// through which the proxy passes it, so that the cluster's audit log names the person
	// behind a ServiceAccount.
	UsernameKey = GroupName + "/username"
)

// PermissionGroups are the ClusterRoles inside user clusters that project members are
// bound to by role, each aggregating the built-in role of the same name, so they grow with
// every API the cluster serves.
var PermissionGroups = map[ProjectRole]string{
	ProjectRoleAdmin: PlatformPrefix + "admin",
	ProjectRoleEdit:  PlatformPrefix + "edit",
	ProjectRoleView:  PlatformPrefix + "view",
}

// ReservedSubject reports whether a user or group name belongs to Kubernetes itself or to
// the platform: never a tenant's, never impersonated for a caller.
func ReservedSubject(name string) bool {
	return strings.HasPrefix(name, BuiltinPrefix) || strings.HasPrefix(name, PlatformPrefix)
}

// reservedNamespaces are the namespaces of a user cluster that Kubernetes or the platform
// own; with the kube- and ucs- prefixes, no Project may place its namespace there.
var reservedNamespaces = map[string]bool{
	"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true,
	SystemNamespace: true, UsersNamespace: true,
}

// ReservedNamespace reports whether a namespace of a user cluster belongs to Kubernetes or
// to the platform.
func ReservedNamespace(name string) bool {
	return reservedNamespaces[name] || strings.HasPrefix(name, "kube-") || strings.HasPrefix(name, PlatformNamespacePrefix)
}

// The ServiceAccount naming rule: one ServiceAccount per user in UsersNamespace, with a
// deterministic, DNS-safe and collision-free name, the username kept in UsernameKey.

// maxReadable bounds the readable part of a name; with the "u-" prefix and the hash it
// stays well inside a ServiceAccount name (a DNS subdomain, 253).
const maxReadable = 40

// hashHexDigits keeps 128 bits of the username's SHA-256: nobody can search for another
// username that lands on an administrator's ServiceAccount.
const hashHexDigits = 32

// ServiceAccountName returns the ServiceAccount of a username: "u-", a readable
// lower-case rendering of the name, and 32 hex digits of its SHA-256. The hash keeps
// names that render alike ("Alice" and "alice", "a.b" and "a-b") apart.
func ServiceAccountName(username string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(username) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= maxReadable {
			break
		}
	}
	readable := strings.TrimRight(b.String(), "-")
	sum := sha256.Sum256([]byte(username))
	hash := hex.EncodeToString(sum[:])[:hashHexDigits]
	if readable == "" {
		return "u-" + hash
	}
	return "u-" + readable + "-" + hash
}

// ServiceAccountUsername is the username the user cluster gives a user's ServiceAccount,
// the one the proxy impersonates.
func ServiceAccountUsername(username string) string {
	return "system:serviceaccount:" + UsersNamespace + ":" + ServiceAccountName(username)
}
