package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// TestReadyMeansUsable: a tenant applies a pod the instant `kubectl wait
// --for=condition=Ready` returns, on several fresh clusters in a row, and it is never
// refused (a cluster whose kube-controller-manager has not made the default
// ServiceAccount yet refuses every pod); the permission groups are aggregated by then.
func TestReadyMeansUsable(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	pod := []byte(`apiVersion: v1
kind: Pod
metadata: {name: first, namespace: default}
spec: {containers: [{name: app, image: registry.k8s.io/pause:3.10}]}
`)
	for i := range 3 {
		name := fmt.Sprintf("fresh%d", i)
		if _, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Create(ctx, newCluster(name, ns), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.CS.ContainerserviceV1alpha1().Clusters(ns).Delete(ctx, name, metav1.DeleteOptions{}) })
		// The credential first (it is issued before the cluster is Ready), so that nothing
		// stands between Ready and the pod.
		kubeconfig := filepath.Join(t.TempDir(), name+".kubeconfig")
		seconds := int64(600)
		eventually(ctx, t, "an admin kubeconfig of "+name, func() (bool, error) {
			resp, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).CreateAdminKubeconfig(ctx, name,
				&v1alpha1.AdminKubeconfigRequest{Spec: v1alpha1.AdminKubeconfigRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
			if err != nil {
				return false, err
			}
			return true, os.WriteFile(kubeconfig, resp.Status.Kubeconfig, 0o600)
		})
		if out, err := env.Kubectl(ctx, nil, "wait", "--for=condition=Ready", "clusters.containerservice.ucloudstack.io/"+name, "-n", ns, "--timeout=120s"); err != nil {
			t.Fatalf("kubectl wait: %v\n%s", err, out)
		}
		if out, err := env.KubectlAs(ctx, kubeconfig, pod, "apply", "-f", "-"); err != nil {
			t.Errorf("%s: the first pod, applied the instant the cluster was Ready, was refused: %v\n%s", name, err, out)
		}
		for _, group := range v1alpha1.PermissionGroups {
			if out, err := env.KubectlAs(ctx, kubeconfig, nil, "get", "clusterrole", group, "-o", "jsonpath={.rules[*].verbs}"); err != nil || strings.TrimSpace(out) == "" {
				t.Errorf("%s: permission group %s not aggregated when Ready: %q %v", name, group, out, err)
			}
		}
	}
}
