// Package identity maps platform users to their ServiceAccounts inside user clusters
// (DESIGN.md security model, rule 3): one per user in the namespace ucs-users, with a
// deterministic, DNS-safe and collision-free name, the username kept in an annotation.
package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	// UsersNamespace holds one ServiceAccount per user who may enter the cluster.
	UsersNamespace = "ucs-users"
	// SystemNamespace holds the platform's own objects in a user cluster.
	SystemNamespace = "ucs-system"
	// ProxyUser is the identity the tenant proxy presents to user clusters.
	ProxyUser = "ucs:proxy"
	// NodeAgentUser is the identity of the agent that keeps a cluster's nodes (kwok on the
	// local driver): it may read and report on nodes and pods, and evict nothing else.
	NodeAgentUser = "ucs:node-agent"
)

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
