// Package storage serves nodes and nodes/status from etcd.
package storage

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/clusterref"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/node"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
	"github.com/ucloudstack/containerservice/pkg/registry/table"
)

// NewStorage returns the storage of nodes and of their status subresource; clusters is
// where a new Node's cluster is looked up. The resource is called nodes like the core
// one, so kubectl users reach it as csnode (or nodes.containerservice.ucloudstack.io).
func NewStorage(typer runtime.ObjectTyper, optsGetter generic.RESTOptionsGetter, clusters rest.Getter) (specstatus.Storage, error) {
	return specstatus.NewStorage(typer, optsGetter, node.NewKind(&clusterref.Checker{Clusters: clusters}), specstatus.Resource[*cs.Node]{
		Plural:     "nodes",
		Singular:   "node",
		ShortNames: []string{"csnode", "csno"},
		New:        func() runtime.Object { return &cs.Node{} },
		NewList:    func() runtime.Object { return &cs.NodeList{} },
		Table:      Table,
	})
}

// Table is how kubectl get shows nodes.
var Table = table.New(
	table.Column[*cs.Node]{Name: "Cluster", Type: "string", Description: "The cluster the node belongs to.",
		Cell: func(n *cs.Node) any { return n.Spec.ClusterName }},
	table.Column[*cs.Node]{Name: "Status", Type: "string", Description: "The lifecycle phase of the node.",
		Cell: func(n *cs.Node) any {
			if n.Spec.Unschedulable && n.Status.Phase != "" {
				return string(n.Status.Phase) + ",SchedulingDisabled"
			}
			return string(n.Status.Phase)
		}},
	table.Column[*cs.Node]{Name: "CPU", Type: "string", Description: "CPUs of the node.",
		Cell: func(n *cs.Node) any { return n.Spec.Resources.CPU.String() }},
	table.Column[*cs.Node]{Name: "Memory", Type: "string", Description: "Memory of the node.",
		Cell: func(n *cs.Node) any { return n.Spec.Resources.Memory.String() }},
	table.Column[*cs.Node]{Name: "GPU", Type: "string", Description: "GPUs of the node: count and model.",
		Cell: func(n *cs.Node) any {
			gpu := n.Spec.Resources.GPU
			switch {
			case gpu == nil:
				return "<none>"
			case gpu.Model == "":
				return fmt.Sprint(gpu.Count)
			default:
				return fmt.Sprintf("%d %s", gpu.Count, gpu.Model)
			}
		}},
	table.Column[*cs.Node]{Name: "Pods", Type: "integer", Description: "Pods bound to the node.",
		Cell: func(n *cs.Node) any { return int64(n.Status.Pods) }},
	table.Column[*cs.Node]{Name: "Internal-IP", Type: "string", Description: "The node's internal address in its cluster.", Wide: true,
		Cell: func(n *cs.Node) any {
			for _, a := range n.Status.Addresses {
				if a.Type == "InternalIP" {
					return a.Address
				}
			}
			return "<none>"
		}},
	table.Column[*cs.Node]{Name: "Kubelet", Type: "string", Description: "The version of the node's kubelet.", Wide: true,
		Cell: func(n *cs.Node) any { return n.Status.KubeletVersion }},
)
