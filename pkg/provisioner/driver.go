// Package provisioner makes Clusters real. A Driver runs control planes (the local driver
// as processes on this machine); the controllers drive it from the API objects and report
// what they observe through the status subresource.
package provisioner

import (
	"context"
	"time"

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

// Driver runs the control planes of clusters. Every method is idempotent and safe to
// call for different clusters concurrently.
type Driver interface {
	// Ensure creates whatever of the cluster's control plane is missing, starts what is
	// not running, bootstraps the cluster once its API answers, and reports its health.
	Ensure(ctx context.Context, c *v1alpha1.Cluster) (*Observation, error)
	// Delete stops the control plane of namespace/name and removes every trace of it;
	// nothing to delete is no error.
	Delete(ctx context.Context, namespace, name string) error
	// Known lists "namespace/name" of every cluster the driver holds anything of, so
	// that leftovers of clusters no longer in the API are found and deleted.
	Known() ([]string, error)
	// AdminKubeconfig issues a short-lived client certificate kubeconfig.
	AdminKubeconfig(ctx context.Context, c *v1alpha1.Cluster, cred Credential) ([]byte, time.Time, error)
	// RotateCredentials replaces the cluster's client CA, so every credential issued
	// before stops working, and restarts what must trust the new one.
	RotateCredentials(ctx context.Context, c *v1alpha1.Cluster) error
	// Shutdown stops every control plane this driver runs, keeping their data.
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
