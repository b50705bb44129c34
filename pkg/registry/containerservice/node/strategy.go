// Package node tells the registry how to create, update and validate Nodes.
package node

import (
	"k8s.io/apimachinery/pkg/fields"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/validation"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/clusterref"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
)

// NewKind is the registry's treatment of Nodes, refs checking their cluster. Nodes are selectable by spec.clusterName so
// that a controller or console lists one cluster's nodes without reading the others.
func NewKind(refs *clusterref.Checker) specstatus.Kind[*cs.Node] {
	return specstatus.Kind[*cs.Node]{
		References:           clusterref.OnCreate(refs, func(o *cs.Node) string { return o.Spec.ClusterName }),
		Validate:             validation.ValidateNode,
		ValidateUpdate:       validation.ValidateNodeUpdate,
		ValidateStatusUpdate: validation.ValidateNodeStatusUpdate,
		InitialStatus:        func(o *cs.Node) { o.Status.Phase = cs.NodePending },
		Fields: func(n *cs.Node) fields.Set {
			return fields.Set{"spec.clusterName": n.Spec.ClusterName, "status.phase": string(n.Status.Phase)}
		},
	}
}
