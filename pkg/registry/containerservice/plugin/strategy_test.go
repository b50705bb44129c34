package plugin

import (
	"context"
	"strings"
	"testing"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

// A Plugin stored before its type left the catalog can still be changed (switched off)
// and so deleted; a new one of that type is refused with the catalog's types listed.
func TestRemovedTypesStayChangeable(t *testing.T) {
	var refs *References // no stores: only the catalog is consulted
	old := &cs.Plugin{Spec: cs.PluginSpec{ClusterName: "prod", Type: "logging"}}
	off := false
	changed := old.DeepCopy()
	changed.Spec.Enabled = &off
	if errs := refs.Check(context.Background(), changed, old); len(errs) != 0 {
		t.Errorf("switching off a stored plugin of a removed type: %v", errs)
	}
	errs := refs.Check(context.Background(), old, nil)
	if len(errs) != 1 || errs[0].Field != "spec.type" || !strings.Contains(errs[0].Error(), `"csi", "gpu-device-plugin", "monitoring"`) {
		t.Errorf("a new plugin of a removed type: %v, want spec.type refused with the catalog listed", errs)
	}
}

func TestSettingsAreCheckedOnChange(t *testing.T) {
	var refs *References
	old := &cs.Plugin{Spec: cs.PluginSpec{ClusterName: "prod", Type: "monitoring"}}
	changed := old.DeepCopy()
	changed.Spec.Config = map[string]string{"replicas": "9"}
	errs := refs.Check(context.Background(), changed, old)
	if len(errs) != 1 || errs[0].Field != "spec.config[replicas]" {
		t.Errorf("a setting out of range on update: %v, want spec.config[replicas]", errs)
	}
	changed.Spec.Config, changed.Spec.Version = nil, "0.1.0"
	if errs := refs.Check(context.Background(), changed, old); len(errs) != 1 || errs[0].Field != "spec.version" {
		t.Errorf("an unknown version: %v, want spec.version", errs)
	}
}

// A stored Plugin whose version or settings the catalog no longer accepts can still be
// switched off.
func TestSwitchingOffIsAlwaysPossible(t *testing.T) {
	var refs *References
	old := &cs.Plugin{Spec: cs.PluginSpec{ClusterName: "prod", Type: "monitoring", Version: "0.1.0", Config: map[string]string{"replicas": "9"}}}
	off := false
	changed := old.DeepCopy()
	changed.Spec.Enabled = &off
	if errs := refs.Check(context.Background(), changed, old); len(errs) != 0 {
		t.Errorf("switching off: %v", errs)
	}
	on := true
	changed.Spec.Enabled = &on
	changed.Spec.Config = map[string]string{"replicas": "8"}
	if errs := refs.Check(context.Background(), changed, old); len(errs) == 0 {
		t.Error("a changed setting was not checked")
	}
}
