// Package plugin tells the registry how to create, update and validate Plugins.
package plugin

import (
	"k8s.io/apimachinery/pkg/fields"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/validation"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/clusterref"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
)

// NewKind is the registry's treatment of Plugins, selectable by cluster and type, refs
// checking their cluster.
func NewKind(refs *clusterref.Checker) specstatus.Kind[*cs.Plugin] {
	return specstatus.Kind[*cs.Plugin]{
		References:           clusterref.OnCreate(refs, func(o *cs.Plugin) string { return o.Spec.ClusterName }),
		Validate:             validation.ValidatePlugin,
		ValidateUpdate:       validation.ValidatePluginUpdate,
		ValidateStatusUpdate: validation.ValidatePluginStatusUpdate,
		InitialStatus:        func(o *cs.Plugin) { o.Status.Phase = cs.PluginPending },
		Fields: func(p *cs.Plugin) fields.Set {
			return fields.Set{"spec.clusterName": p.Spec.ClusterName, "spec.type": p.Spec.Type}
		},
	}
}
