// Package cluster tells the registry how to create, update and validate Clusters.
package cluster

import (
	"context"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/validation"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
)

// Kind is the registry's treatment of Clusters.
var Kind = specstatus.Kind[*cs.Cluster]{
	Validate:             validation.ValidateCluster,
	ValidateUpdate:       validation.ValidateClusterUpdate,
	ValidateStatusUpdate: validation.ValidateClusterStatusUpdate,
	InitialStatus:        func(o *cs.Cluster) { o.Status.Phase = cs.ClusterPending },
	Default:              defaultAdministrators,
	Guard:                guardFinalizer,
	Fields: func(c *cs.Cluster) fields.Set {
		return fields.Set{"status.phase": string(c.Status.Phase)}
	},
}

// defaultAdministrators makes the creator the cluster's administrator when the spec names
// none, so that whoever asked for a cluster can use it. Built-in identities (a controller's
// ServiceAccount, system:admin) are not turned into administrators: validation refuses
// them, and the cluster is then left for its owner to name administrators.
func defaultAdministrators(ctx context.Context, c *cs.Cluster) {
	if len(c.Spec.Administrators) > 0 {
		return
	}
	user, ok := genericapirequest.UserFrom(ctx)
	if !ok || user.GetName() == "" || strings.HasPrefix(user.GetName(), v1alpha1.BuiltinPrefix) {
		return
	}
	c.Spec.Administrators = []cs.Subject{{Kind: cs.SubjectKindUser, Name: user.GetName()}}
}

// guardFinalizer refuses the removal of the control plane finalizer by anyone but the
// provisioner (the server's loopback identity) and platform operators, both in
// system:masters.
func guardFinalizer(ctx context.Context, c, old *cs.Cluster) field.ErrorList {
	if !slices.Contains(old.Finalizers, v1alpha1.ClusterFinalizer) || slices.Contains(c.Finalizers, v1alpha1.ClusterFinalizer) {
		return nil
	}
	if u, ok := genericapirequest.UserFrom(ctx); ok && slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup) {
		return nil
	}
	return field.ErrorList{field.Forbidden(field.NewPath("metadata", "finalizers"),
		v1alpha1.ClusterFinalizer+" is removed by the provisioner once the control plane is gone; delete the cluster instead")}
}
