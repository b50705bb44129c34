package integration

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// checkPluginAdmission: with a csi Plugin on prod already, admission checks every new
// Plugin against the catalog and the cluster's other Plugins, naming the field.
func checkPluginAdmission(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	api := env.CS.ContainerserviceV1alpha1().Plugins(ns)
	cases := map[string]struct {
		spec v1alpha1.PluginSpec
		want []string
	}{
		"a type out of the catalog": {v1alpha1.PluginSpec{ClusterName: "prod", Type: "metrics-server"},
			[]string{`spec.type: Unsupported value: "metrics-server": supported values: "csi", "gpu-device-plugin", "monitoring"`}},
		"an unknown version": {v1alpha1.PluginSpec{ClusterName: "prod", Type: "monitoring", Version: "9.9.9"},
			[]string{`spec.version: Unsupported value: "9.9.9"`}},
		"an unknown setting": {v1alpha1.PluginSpec{ClusterName: "prod", Type: "monitoring", Config: map[string]string{"retension": "30d"}},
			[]string{`spec.config[retension]: Unsupported value: "retension"`}},
		"a setting of the wrong type": {v1alpha1.PluginSpec{ClusterName: "prod", Type: "monitoring", Config: map[string]string{"replicas": "two"}},
			[]string{`spec.config[replicas]: Invalid value: "two"`}},
		"a setting out of range": {v1alpha1.PluginSpec{ClusterName: "prod", Type: "monitoring", Config: map[string]string{"replicas": "5"}},
			[]string{`spec.config[replicas]: Invalid value: "5": must be at most 3`}},
		"a second plugin of a type": {v1alpha1.PluginSpec{ClusterName: "prod", Type: "csi"},
			[]string{"spec.type: Duplicate value", "plugin prod-storage already installs it on cluster prod"}},
	}
	for name, c := range cases {
		_, err := api.Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{GenerateName: "p-"}, Spec: c.spec}, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Errorf("%s: %v, want Invalid", name, err)
			continue
		}
		for _, want := range c.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want it to say %q", name, err, want)
			}
		}
	}
	// Valid settings and a named version pass; the version is what the table shows.
	ok, err := api.Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "prod-monitoring"}, Spec: v1alpha1.PluginSpec{
		ClusterName: "prod", Type: "monitoring", Version: "0.95.2", Config: map[string]string{"retention": "30d", "storageSize": "20Gi", "replicas": "3"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a valid monitoring plugin: %v", err)
	}
	// Switching it off is a spec change that still passes.
	off := false
	ok.Spec.Enabled = &off
	if _, err := api.Update(ctx, ok, metav1.UpdateOptions{}); err != nil {
		t.Errorf("disable a plugin: %v", err)
	}
}
