// Package storage serves projects and projects/status from etcd.
package storage

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/project"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
	"github.com/ucloudstack/containerservice/pkg/registry/table"
)

// NewStorage returns the storage of projects and of their status subresource; clusters is
// where the clusters a project names are looked up.
func NewStorage(typer runtime.ObjectTyper, optsGetter generic.RESTOptionsGetter, clusters rest.Getter) (specstatus.Storage, error) {
	// A project's references are checked against the clusters and against the other
	// projects of the tenant: its own store, set as soon as it is built below, before
	// anything is served.
	refs := &project.References{Clusters: clusters}
	storage, err := specstatus.NewStorage(typer, optsGetter, project.NewKind(refs), specstatus.Resource[*cs.Project]{
		Plural:     "projects",
		Singular:   "project",
		ShortNames: []string{"proj"},
		New:        func() runtime.Object { return &cs.Project{} },
		NewList:    func() runtime.Object { return &cs.ProjectList{} },
		Table:      Table,
		// One project per namespace of a tenant: see project.References.
		SerialWrites: true,
	})
	if err != nil {
		return specstatus.Storage{}, err
	}
	refs.Projects = storage.Main
	return storage, nil
}

// Table is how kubectl get shows projects.
var Table = table.New(
	table.Column[*cs.Project]{Name: "Clusters", Type: "string", Description: "The clusters the project spans.",
		Cell: func(p *cs.Project) any { return strings.Join(p.Spec.Clusters, ",") }},
	table.Column[*cs.Project]{Name: "Members", Type: "integer", Description: "The number of users and groups in the project.",
		Cell: func(p *cs.Project) any { return int64(len(p.Spec.Members)) }},
	table.Column[*cs.Project]{Name: "Status", Type: "string", Description: "The overall state of the project.",
		Cell: func(p *cs.Project) any { return string(p.Status.Phase) }},
	table.Column[*cs.Project]{Name: "Namespace", Type: "string", Description: "The project's namespace in its clusters.", Wide: true,
		Cell: func(p *cs.Project) any { return p.Spec.Namespace }},
)
