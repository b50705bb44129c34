package kwok

import (
	"bytes"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestOptionsNeedNoDefaults: kwok applies no defaults to a KwokConfiguration read from a
// file, so ours must give every worker count (zero leaves nodes NotReady for ever), keep
// nodes' leases, and keep the debugging handlers off.
func TestOptionsNeedNoDefaults(t *testing.T) {
	if !bytes.HasPrefix(Config, options) || !bytes.HasSuffix(Config, Stages) {
		t.Fatal("the configuration is not the options followed by the stages")
	}
	var conf struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Options    map[string]any `json:"options"`
	}
	doc, _, _ := bytes.Cut(options, []byte("\n---"))
	if err := yaml.UnmarshalStrict(doc, &conf); err != nil {
		t.Fatal(err)
	}
	if conf.APIVersion != "config.kwok.x-k8s.io/v1alpha1" || conf.Kind != "KwokConfiguration" {
		t.Errorf("%s %s is not kwok's configuration", conf.APIVersion, conf.Kind)
	}
	for _, k := range []string{"podPlayStageParallelism", "nodePlayStageParallelism", "nodeLeaseParallelism", "podsOnNodeSyncParallelism", "nodeLeaseDurationSeconds"} {
		if n, ok := conf.Options[k].(float64); !ok || n < 1 {
			t.Errorf("options.%s = %v, want at least 1", k, conf.Options[k])
		}
	}
	for _, k := range []string{"enableDebuggingHandlers", "enableProfilingHandler", "enableContentionProfiling", "manageAllNodes"} {
		if v, ok := conf.Options[k].(bool); !ok || v {
			t.Errorf("options.%s = %v, want false", k, conf.Options[k])
		}
	}
}
