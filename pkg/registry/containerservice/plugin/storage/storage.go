// Package storage serves plugins and plugins/status from etcd.
package storage

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/provisioner/catalog"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/clusterref"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/plugin"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
	"github.com/ucloudstack/containerservice/pkg/registry/table"
)

// NewStorage returns the storage of plugins and of their status subresource; clusters is
// where a new Plugin's cluster is looked up.
func NewStorage(typer runtime.ObjectTyper, optsGetter generic.RESTOptionsGetter, clusters rest.Getter) (specstatus.Storage, error) {
	// A plugin's references are checked against the clusters and against the other
	// plugins: its own store, set as soon as it is built below, before anything is served.
	refs := &plugin.References{Clusters: &clusterref.Checker{Clusters: clusters}}
	storage, err := specstatus.NewStorage(typer, optsGetter, plugin.NewKind(refs), specstatus.Resource[*cs.Plugin]{
		Plural:     "plugins",
		Singular:   "plugin",
		ShortNames: []string{"plg"},
		New:        func() runtime.Object { return &cs.Plugin{} },
		NewList:    func() runtime.Object { return &cs.PluginList{} },
		Table:      Table,
		// One of a type per cluster: see plugin.References.
		SerialWrites: true,
	})
	if err != nil {
		return specstatus.Storage{}, err
	}
	refs.Plugins = storage.Main
	return storage, nil
}

// Table is how kubectl get shows plugins.
var Table = table.New(
	table.Column[*cs.Plugin]{Name: "Cluster", Type: "string", Description: "The cluster the add-on is installed into.",
		Cell: func(p *cs.Plugin) any { return p.Spec.ClusterName }},
	table.Column[*cs.Plugin]{Name: "Type", Type: "string", Description: "The add-on from the catalog.",
		Cell: func(p *cs.Plugin) any { return p.Spec.Type }},
	table.Column[*cs.Plugin]{Name: "Version", Type: "string", Description: "The catalog version the add-on runs, or, until it runs, the one it will.",
		Cell: func(p *cs.Plugin) any {
			switch entry := catalog.Lookup(p.Spec.Type); {
			case p.Status.Version != "":
				return p.Status.Version
			case p.Spec.Version != "" || entry == nil:
				return p.Spec.Version
			default:
				return entry.Newest().Version
			}
		}},
	table.Column[*cs.Plugin]{Name: "Ready", Type: "string", Description: "How many of the add-on's objects are Current (applied, rolled out and ready), of how many.",
		Cell: func(p *cs.Plugin) any { return fmt.Sprintf("%d/%d", p.Status.CurrentObjects, len(p.Status.Applied)) }},
	table.Column[*cs.Plugin]{Name: "Phase", Type: "string", Description: "The lifecycle phase of the add-on.",
		Cell: func(p *cs.Plugin) any { return string(p.Status.Phase) }},
	table.Column[*cs.Plugin]{Name: "Enabled", Type: "boolean", Description: "Whether the add-on is switched on (the default).", Wide: true,
		Cell: func(p *cs.Plugin) any { return p.Spec.Enabled == nil || *p.Spec.Enabled }},
)
