// Package plugin tells the registry how to create, update and validate Plugins.
package plugin

import (
	"context"
	"fmt"
	"maps"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/validation"
	"github.com/ucloudstack/containerservice/pkg/provisioner/catalog"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/clusterref"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
)

// References checks what a Plugin says of other things: its cluster (on create), the
// catalog (its type, version and settings), and the other Plugins (one of each type per
// cluster). The plugins' storage sets both stores as it builds itself.
type References struct {
	Clusters *clusterref.Checker
	Plugins  rest.Lister
}

// Check runs on create (old nil) and on spec changes.
func (r *References) Check(ctx context.Context, p, old *cs.Plugin) field.ErrorList {
	fld := field.NewPath("spec")
	var errs field.ErrorList
	if old == nil && r != nil {
		errs = append(errs, r.Clusters.Check(ctx, p.Spec.ClusterName, fld.Child("clusterName"))...)
	}
	entry := catalog.Lookup(p.Spec.Type)
	if entry == nil {
		if old != nil {
			// Stored before its type left the catalog: it can still be switched off,
			// changed and deleted, never created.
			return errs
		}
		return append(errs, field.NotSupported(fld.Child("type"), p.Spec.Type, catalog.Types()))
	}
	switch {
	case old != nil && p.Spec.Enabled != nil && !*p.Spec.Enabled:
		// Switching off is always possible, whatever the catalog says of the version or
		// the settings it was stored with.
	case old != nil && old.Spec.Version == p.Spec.Version && maps.Equal(old.Spec.Config, p.Spec.Config):
		// Version and settings as stored: a catalog that tightened since does not make
		// the Plugin unchangeable.
	default:
		version, err := entry.Resolve(p.Spec.Version)
		if err != nil {
			return append(errs, field.NotSupported(fld.Child("version"), p.Spec.Version, entry.VersionNames()))
		}
		errs = append(errs, version.Validate(p.Spec.Config, fld.Child("config"))...)
	}
	if old == nil && r != nil && r.Plugins != nil {
		errs = append(errs, r.oneOfAType(ctx, p, fld.Child("type"))...)
	}
	return errs
}

// oneOfAType refuses a second Plugin of a type on one cluster: two would apply the same
// objects with the same field manager and take each other's objects away.
func (r *References) oneOfAType(ctx context.Context, p *cs.Plugin, fld *field.Path) field.ErrorList {
	list, err := r.Plugins.List(ctx, &metainternalversion.ListOptions{})
	if err != nil {
		return field.ErrorList{field.InternalError(fld, fmt.Errorf("list plugins: %w", err))}
	}
	for _, other := range list.(*cs.PluginList).Items {
		if other.Name != p.Name && other.Spec.ClusterName == p.Spec.ClusterName && other.Spec.Type == p.Spec.Type {
			return field.ErrorList{field.Duplicate(fld, fmt.Sprintf("%s: plugin %s already installs it on cluster %s", p.Spec.Type, other.Name, p.Spec.ClusterName))}
		}
	}
	return nil
}

// NewKind is the registry's treatment of Plugins, selectable by cluster and type, refs
// checking their cluster, the catalog and the other Plugins.
func NewKind(refs *References) specstatus.Kind[*cs.Plugin] {
	return specstatus.Kind[*cs.Plugin]{
		References:           refs.Check,
		Validate:             validation.ValidatePlugin,
		ValidateUpdate:       validation.ValidatePluginUpdate,
		ValidateStatusUpdate: validation.ValidatePluginStatusUpdate,
		InitialStatus:        func(o *cs.Plugin) { o.Status.Phase = cs.PluginPending },
		Fields: func(p *cs.Plugin) fields.Set {
			return fields.Set{"spec.clusterName": p.Spec.ClusterName, "spec.type": p.Spec.Type}
		},
	}
}
