// Package artifacts holds the manifests a platform admin applies to a host cluster to run
// containerservice, embedded so that the local stack and the tests apply the very same files.
package artifacts

import "embed"

// RBAC holds the server's namespace, ServiceAccount and permissions on the host, and the
// tenant ClusterRoles a platform admin binds in tenant namespaces.
//
//go:embed rbac/*.yaml
var RBAC embed.FS

// Deploy holds the Deployment, Service and APIService that run the server in a host
// cluster, and the local provisioner's Service for a server on a machine of its own.
//
//go:embed deploy/*.yaml deploy/local-provisioner/*.yaml
var Deploy embed.FS
