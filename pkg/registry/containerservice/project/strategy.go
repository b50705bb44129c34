// Package project tells the registry how to create, update and validate Projects.
package project

import (
	"context"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/validation"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
)

// Kind is the registry's treatment of Projects.
var Kind = specstatus.Kind[*cs.Project]{
	Validate:             validation.ValidateProject,
	ValidateUpdate:       validation.ValidateProjectUpdate,
	ValidateStatusUpdate: validation.ValidateProjectStatusUpdate,
	InitialStatus:        func(o *cs.Project) { o.Status.Phase = cs.ProjectPending },
	Default:              defaultNamespace,
}

// defaultNamespace names the project's namespace in user clusters after the project. It
// runs after name generation, so projects created with generateName get one too.
func defaultNamespace(_ context.Context, p *cs.Project) {
	if p.Spec.Namespace == "" {
		p.Spec.Namespace = p.Name
	}
}
