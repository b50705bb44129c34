// Package project tells the registry how to create, update and validate Projects.
package project

import (
	"context"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/validation"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
)

// NewKind is the registry's treatment of Projects, with refs checking what they say of
// other objects.
func NewKind(refs *References) specstatus.Kind[*cs.Project] {
	return specstatus.Kind[*cs.Project]{
		Validate:             validation.ValidateProject,
		ValidateUpdate:       validation.ValidateProjectUpdate,
		ValidateStatusUpdate: validation.ValidateProjectStatusUpdate,
		References:           refs.Check,
		InitialStatus:        func(o *cs.Project) { o.Status.Phase = cs.ProjectPending },
		Default:              defaultNamespace,
	}
}

// defaultNamespace names the project's namespace in user clusters after the project. It
// runs after name generation, so projects created with generateName get one too.
func defaultNamespace(_ context.Context, p *cs.Project) {
	if p.Spec.Namespace == "" {
		p.Spec.Namespace = p.Name
	}
	if p.Spec.NamespacePolicy == "" {
		p.Spec.NamespacePolicy = cs.ProjectNamespaceRetain
	}
}
