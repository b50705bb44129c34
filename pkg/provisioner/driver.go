// Package provisioner makes Clusters real. A Driver runs control planes (the local driver
// as processes on this machine); the controllers drive it from the API objects and report
// what they observe through the status subresource.
package provisioner

import (
	"context"
	"errors"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// Component names, also the suffix of each component's condition type.
const (
	Etcd              = "Etcd"
	APIServer         = "APIServer"
	ControllerManager = "ControllerManager"
	Scheduler         = "Scheduler"
)

// Components lists the control plane components in start order.
var Components = []string{Etcd, APIServer, ControllerManager, Scheduler}

// ConditionTypes maps each component to its condition type on the Cluster.
var ConditionTypes = map[string]string{
	Etcd:              v1alpha1.ClusterConditionEtcdReady,
	APIServer:         v1alpha1.ClusterConditionAPIServerReady,
	ControllerManager: v1alpha1.ClusterConditionControllerManagerReady,
	Scheduler:         v1alpha1.ClusterConditionSchedulerReady,
}

// Health is what a driver observed of one component.
type Health struct {
	// Healthy is true when the component answered its health check.
	Healthy bool
	// Message says what is wrong when it is not.
	Message string
}

// Observation is what a driver observed of a cluster's control plane.
type Observation struct {
	// Components maps each component name to its health.
	Components map[string]Health
	// Internal and External are the kube-apiserver URLs.
	Internal, External string
	// Version is the Kubernetes version the control plane runs.
	Version string
	// Updating is true while the driver rolls out a change it made itself (components
	// restarted to apply new certificates or a new configuration), until all are healthy.
	Updating bool
}

// Ready reports whether every component is healthy.
func (o *Observation) Ready() bool {
	for _, c := range Components {
		if !o.Components[c].Healthy {
			return false
		}
	}
	return true
}

// Credential asks for a client certificate kubeconfig for direct access.
type Credential struct {
	// User and Groups are the certificate's subject.
	User   string
	Groups []string
	// TTL is the certificate's lifetime.
	TTL time.Duration
	// External chooses the external endpoint over the internal one.
	External bool
}

// Identity is a named platform identity that controllers act as inside user clusters.
type Identity string

const (
	// PlatformManager puts the platform's objects into user clusters (namespaces,
	// permission groups, ServiceAccounts, bindings); it is cluster-admin there.
	PlatformManager Identity = Identity(v1alpha1.PlatformManagerUser)
	// Proxy is the tenant proxy's identity: it may only impersonate what the platform's
	// RBAC inside the cluster lets it (the users' ServiceAccounts).
	Proxy Identity = Identity(v1alpha1.ProxyUser)
)

// Access hands out clients for user clusters. It is the only way controllers reach inside
// a user cluster: never from files.
type Access interface {
	// RESTConfig returns a client configuration for the cluster's kube-apiserver (its
	// internal endpoint) as the identity. The credential is short-lived and follows
	// rotations: ask again rather than keeping a configuration for long.
	RESTConfig(ctx context.Context, c *v1alpha1.Cluster, id Identity) (*rest.Config, error)
}

// Volumes is implemented by drivers that keep volumes of the csi add-on on the management side.
type Volumes interface {
	// VolumeDir returns the directory holding the cluster's volumes (created if missing).
	VolumeDir(c *v1alpha1.Cluster) (string, error)
}

// Held is a control plane a driver holds data of.
type Held struct {
	// Namespace, Name and UID are those of the Cluster it was made for ("" UID when the
	// driver cannot tell).
	Namespace, Name, UID string
	// Running is true when any of its processes runs.
	Running bool
}

// ErrRunning refuses to quarantine a control plane whose processes run.
var ErrRunning = errors.New("the control plane is running")

// Driver runs the control planes of clusters. Every method is idempotent and safe to
// call for different clusters concurrently.
type Driver interface {
	Access
	// Ensure creates whatever of the cluster's control plane is missing, starts what is
	// not running, adopts what still runs from an earlier server, and reports its health.
	Ensure(ctx context.Context, c *v1alpha1.Cluster) (*Observation, error)
	// Delete stops the control plane of the Cluster namespace/name with that UID and
	// removes its data. Callers have proof that the Cluster was deleted; data of another
	// UID is never touched. Nothing to delete is no error.
	Delete(ctx context.Context, namespace, name, uid string) error
	// Held lists every control plane the driver holds data of, so that those no Cluster
	// accounts for are found.
	Held() ([]Held, error)
	// Quarantine moves the data of a control plane no Cluster accounts for out of the way,
	// keeping it whole until an operator removes it, and returns where it went. A running
	// control plane is refused with ErrRunning: tenants keep running whatever the
	// platform's state. Ensure brings a quarantined control plane back when its Cluster
	// (that UID) reappears.
	Quarantine(ctx context.Context, h Held) (string, error)
	// AdminKubeconfig issues a short-lived client certificate kubeconfig.
	AdminKubeconfig(ctx context.Context, c *v1alpha1.Cluster, cred Credential) ([]byte, time.Time, error)
	// RotateCredentials replaces the cluster's client CA, so every credential issued
	// before stops working, and restarts what must trust the new one. It does so once per
	// token: asked again with a token already done, it does nothing.
	RotateCredentials(ctx context.Context, c *v1alpha1.Cluster, token string) error
	// EnsureNodeAgent runs what keeps the cluster's worker nodes (the kubelets' side)
	// while run is true and stops it when false (the cluster has no nodes), and reports
	// its health. Nodes the agent keeps are those labelled
	// app.kubernetes.io/managed-by=containerservice.
	EnsureNodeAgent(ctx context.Context, c *v1alpha1.Cluster, run bool) (Health, error)
	// Shutdown stops supervising; the control planes keep running, to be adopted by the
	// next start.
	Shutdown()
	// Changes delivers "namespace/name" of clusters whose control plane changed on its
	// own (a process died), so that their status is brought up to date at once.
	Changes() <-chan string
}

// PermanentError marks a failure retrying alone will not cure (missing binaries, an
// unsupported version); the message says what to do.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }
