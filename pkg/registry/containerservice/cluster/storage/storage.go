// Package storage serves clusters and their subresources: the object and its status from
// etcd, kubeconfig (a user's OIDC kubeconfig for the proxy), adminkubeconfig (a
// short-lived break-glass credential from the driver) and proxy (the tenant proxy into the
// user cluster).
package storage

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/proxy"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/cluster"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
	"github.com/ucloudstack/containerservice/pkg/registry/table"
)

// ClusterStorage is every REST object of the clusters resource.
type ClusterStorage struct {
	specstatus.Storage
	Kubeconfig      *KubeconfigREST
	AdminKubeconfig *AdminKubeconfigREST
	Proxy           *ProxyREST
}

// Config is what the subresources of clusters need beyond the store.
type Config struct {
	// Scheme encodes the subresources' answers.
	Scheme *runtime.Scheme
	// Driver mints break-glass credentials and reaches user clusters; nil serves the API
	// alone (the credential and proxy subresources then answer that no driver runs).
	Driver provisioner.Driver
	// Members is the proxy's index of project members; nil admits administrators only.
	Members *proxy.Members
	// Kubeconfig configures the user kubeconfigs of clusters/kubeconfig.
	Kubeconfig KubeconfigConfig
	// AdminKubeconfigMaxTTL caps the lifetime of break-glass credentials.
	AdminKubeconfigMaxTTL time.Duration
}

// NewStorage returns the storage of clusters and of every subresource of theirs.
func NewStorage(optsGetter generic.RESTOptionsGetter, cfg Config) (ClusterStorage, error) {
	storage, err := specstatus.NewStorage(cfg.Scheme, optsGetter, cluster.Kind, specstatus.Resource[*cs.Cluster]{
		Plural:     "clusters",
		Singular:   "cluster",
		ShortNames: []string{"cls"},
		New:        func() runtime.Object { return &cs.Cluster{} },
		NewList:    func() runtime.Object { return &cs.ClusterList{} },
		Table:      Table,
	})
	if err != nil {
		return ClusterStorage{}, err
	}
	var tenantProxy *proxy.Proxy
	if cfg.Driver != nil {
		tenantProxy = proxy.New(cfg.Driver)
	}
	return ClusterStorage{
		Storage:         storage,
		Kubeconfig:      NewKubeconfigREST(storage.Main, cfg.Kubeconfig),
		AdminKubeconfig: NewAdminKubeconfigREST(storage.Main, cfg.Driver, cfg.Scheme, cfg.AdminKubeconfigMaxTTL),
		Proxy:           NewProxyREST(storage.Main, cfg.Scheme, tenantProxy, cfg.Members),
	}, nil
}

// Table is how kubectl get shows clusters.
var Table = table.New(
	table.Column[*cs.Cluster]{Name: "Status", Type: "string", Description: "The lifecycle phase of the cluster.",
		Cell: func(c *cs.Cluster) any { return string(c.Status.Phase) }},
	table.Column[*cs.Cluster]{Name: "Version", Type: "string", Description: "The Kubernetes version the control plane runs, or is asked to run.",
		Cell: func(c *cs.Cluster) any {
			if c.Status.Version != "" {
				return c.Status.Version
			}
			return c.Spec.Version
		}},
	table.Column[*cs.Cluster]{Name: "Nodes", Type: "string", Description: "Ready and total worker nodes.",
		Cell: func(c *cs.Cluster) any { return fmt.Sprintf("%d/%d", c.Status.Nodes.Ready, c.Status.Nodes.Total) }},
	table.Column[*cs.Cluster]{Name: "Endpoint", Type: "string", Description: "The external URL of the cluster's kube-apiserver.",
		Cell: func(c *cs.Cluster) any {
			if c.Status.Endpoints.External != "" {
				return c.Status.Endpoints.External
			}
			return c.Status.Endpoints.Internal
		}},
	table.Column[*cs.Cluster]{Name: "Control-Plane", Type: "integer", Description: "Control plane replicas.", Wide: true,
		Cell: func(c *cs.Cluster) any { return int64(c.Spec.ControlPlane.Replicas) }},
	table.Column[*cs.Cluster]{Name: "Families", Type: "string", Description: "IP families of the cluster.", Wide: true,
		Cell: func(c *cs.Cluster) any { return joinFamilies(c.Spec.Network.IPFamilies) }},
)

func joinFamilies(fams []cs.IPFamily) string {
	names := make([]string, len(fams))
	for i, f := range fams {
		names[i] = string(f)
	}
	return strings.Join(names, ",")
}
