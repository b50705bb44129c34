// Package storage serves clusters and clusters/status from etcd.
package storage

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/cluster"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
	"github.com/ucloudstack/containerservice/pkg/registry/table"
)

// NewREST returns the storage of clusters and of their status subresource.
func NewREST(typer runtime.ObjectTyper, optsGetter generic.RESTOptionsGetter) (*specstatus.REST, *specstatus.StatusREST, error) {
	return specstatus.NewStorage(typer, optsGetter, cluster.Kind, specstatus.Resource[*cs.Cluster]{
		Plural:     "clusters",
		Singular:   "cluster",
		ShortNames: []string{"cls"},
		New:        func() runtime.Object { return &cs.Cluster{} },
		NewList:    func() runtime.Object { return &cs.ClusterList{} },
		Table:      Table,
	})
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
