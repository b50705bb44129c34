// Package storage serves plugins and plugins/status from etcd.
package storage

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/clusterref"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/plugin"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
	"github.com/ucloudstack/containerservice/pkg/registry/table"
)

// NewStorage returns the storage of plugins and of their status subresource; clusters is
// where a new Plugin's cluster is looked up.
func NewStorage(typer runtime.ObjectTyper, optsGetter generic.RESTOptionsGetter, clusters rest.Getter) (specstatus.Storage, error) {
	return specstatus.NewStorage(typer, optsGetter, plugin.NewKind(&clusterref.Checker{Clusters: clusters}), specstatus.Resource[*cs.Plugin]{
		Plural:     "plugins",
		Singular:   "plugin",
		ShortNames: []string{"plg"},
		New:        func() runtime.Object { return &cs.Plugin{} },
		NewList:    func() runtime.Object { return &cs.PluginList{} },
		Table:      Table,
	})
}

// Table is how kubectl get shows plugins.
var Table = table.New(
	table.Column[*cs.Plugin]{Name: "Cluster", Type: "string", Description: "The cluster the add-on is installed into.",
		Cell: func(p *cs.Plugin) any { return p.Spec.ClusterName }},
	table.Column[*cs.Plugin]{Name: "Type", Type: "string", Description: "The add-on from the catalog.",
		Cell: func(p *cs.Plugin) any { return p.Spec.Type }},
	table.Column[*cs.Plugin]{Name: "Enabled", Type: "boolean", Description: "Whether the add-on is switched on.",
		Cell: func(p *cs.Plugin) any { return p.Spec.Enabled != nil && *p.Spec.Enabled }},
	table.Column[*cs.Plugin]{Name: "Status", Type: "string", Description: "The lifecycle phase of the add-on.",
		Cell: func(p *cs.Plugin) any { return string(p.Status.Phase) }},
)
