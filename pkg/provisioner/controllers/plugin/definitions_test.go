package plugin

import (
	"encoding/json"
	"testing"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// TestADefinitionIsReadWithoutItsSchema: what the controller reads of a definition keeps
// its names, versions, labels and status (kstatus still sees it established), and drops
// its schema and managed fields, the bulk of it.
func TestADefinitionIsReadWithoutItsSchema(t *testing.T) {
	big := map[string]any{"type": "object", "description": string(make([]byte, 100_000))}
	crd := map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets.example.com", "resourceVersion": "7", "generation": 1,
			"labels":        map[string]any{v1alpha1.PluginLabel: "mon"},
			"managedFields": []any{map[string]any{"manager": "x", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:spec": big}}}},
		"spec": map[string]any{"group": "example.com", "scope": "Namespaced",
			"names":    map[string]any{"plural": "widgets", "kind": "Widget"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{"openAPIV3Schema": big}}}},
		"status": map[string]any{"observedGeneration": 1, "acceptedNames": map[string]any{"plural": "widgets", "kind": "Widget"},
			"conditions": []any{
				map[string]any{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
				map[string]any{"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}}},
	}
	body, err := json.Marshal(crd)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeDefinition(body)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(got.Object)
	if len(out) > 2000 {
		t.Errorf("read %d bytes of a definition whose schema is 100 kB: the schema or managed fields were kept", len(out))
	}
	if got.GetName() != "widgets.example.com" || got.GetResourceVersion() != "7" || got.GetLabels()[v1alpha1.PluginLabel] != "mon" {
		t.Errorf("metadata lost: %s", out)
	}
	if h := healthOf(got); h.status != status.CurrentStatus {
		t.Errorf("an established definition reads %s (%s)", h.status, h.message)
	}
	versions, _, _ := unstructured.NestedSlice(got.Object, "spec", "versions")
	if len(versions) != 1 || versions[0].(map[string]any)["name"] != "v1" || versions[0].(map[string]any)["served"] != true {
		t.Errorf("versions: %v", versions)
	}
}
