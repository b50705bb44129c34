package integration

import (
	"io/fs"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/ucloudstack/containerservice/artifacts"
)

// TestDeploymentManifests has the real kube-apiserver validate every deployment manifest
// (server-side dry run), and checks what running them relies on: the in-cluster replicas
// name their provisioner (none: they have no kube binaries, so they run no controllers
// and may roll), never the local one by default.
func TestDeploymentManifests(t *testing.T) {
	ctx := testContext(t)
	files, err := fs.Glob(artifacts.Deploy, "deploy/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := fs.Glob(artifacts.Deploy, "deploy/local-provisioner/*.yaml")
	files = append(files, more...)
	if len(files) < 3 {
		t.Fatalf("deployment manifests: %v", files)
	}
	for _, f := range files {
		data, err := artifacts.Deploy.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := env.Kubectl(ctx, data, "apply", "--dry-run=server", "-f", "-"); err != nil {
			t.Errorf("%s does not validate: %v\n%s", f, err, out)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			if !strings.Contains(doc, "kind: Deployment") {
				continue
			}
			var d appsv1.Deployment
			if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
				t.Fatal(err)
			}
			args := d.Spec.Template.Spec.Containers[0].Args
			if !slices.Contains(args, "--provisioner=none") {
				t.Errorf("%s: the Deployment's server does not name --provisioner=none: %v", f, args)
			}
		}
	}
}
