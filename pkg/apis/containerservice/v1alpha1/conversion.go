package v1alpha1

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
)

// FieldSelectors lists, per kind, the fields besides metadata.name and
// metadata.namespace that list and watch requests may select on. The registry builds
// the same fields for each object, so the two cannot drift apart.
var FieldSelectors = map[string][]string{
	"Cluster": {"status.phase"},
	"Node":    {"spec.clusterName", "status.phase"},
	"Plugin":  {"spec.clusterName", "spec.type"},
	"Project": nil,
}

func addFieldLabelConversions(scheme *runtime.Scheme) error {
	for kind, fields := range FieldSelectors {
		allowed := map[string]bool{"metadata.name": true, "metadata.namespace": true}
		for _, f := range fields {
			allowed[f] = true
		}
		err := scheme.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind(kind), func(label, value string) (string, string, error) {
			if !allowed[label] {
				return "", "", fmt.Errorf("field label %q is not supported for %s", label, kind)
			}
			return label, value, nil
		})
		if err != nil {
			return fmt.Errorf("register field selectors of %s: %w", kind, err)
		}
	}
	return nil
}
