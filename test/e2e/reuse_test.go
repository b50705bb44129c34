package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
)

// TestANameIsNeverReusedWithItsData checks that a tenant admin cannot strip the control
// plane finalizer, then plays an operator who does and deletes the cluster, and creates a
// cluster of the same name: the old control plane must be gone, and the new cluster must
// share nothing with it (its credentials get 401).
func TestANameIsNeverReusedWithItsData(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	api := env.CS.ContainerserviceV1alpha1().Clusters(ns)
	createReady(ctx, t, newCluster("same", ns))
	_, oldCfg := adminKubeconfig(ctx, t, env.CS, ns, "same", 3600)
	oldProcs := env.ClusterProcesses(ns, "same")

	// A tenant admin may not strip the finalizer.
	kubectlOrFail(ctx, t, "create", "rolebinding", "tina", "-n", ns, "--clusterrole=containerservice:tenant-admin", "--user=tina")
	tinaCfg, err := env.UserConfig("tina")
	if err != nil {
		t.Fatal(err)
	}
	tina := versioned.NewForConfigOrDie(tinaCfg).ContainerserviceV1alpha1().Clusters(ns)
	eventually(ctx, t, "tina administers the tenant", func() (bool, error) {
		_, err := tina.Get(ctx, "same", metav1.GetOptions{})
		return err == nil, err
	})
	strip := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := tina.Patch(ctx, "same", types.MergePatchType, strip, metav1.PatchOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "metadata.finalizers") {
		t.Errorf("a tenant admin strips the finalizer: %v, want Invalid naming metadata.finalizers", err)
	}

	// A platform operator (system:masters) may, as a last resort. Remove it first, then
	// delete: the object vanishes at once, before the controller can tear anything down.
	if _, err := api.Patch(ctx, "same", types.MergePatchType, strip, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := api.Delete(ctx, "same", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the old control plane is stopped", func() (bool, error) {
		for pid := range oldProcs {
			if _, running := env.ClusterProcesses(ns, "same")[pid]; running {
				return false, nil
			}
		}
		return true, nil
	})

	fresh := createReady(ctx, t, newCluster("same", ns))
	t.Cleanup(func() { _ = api.Delete(context.Background(), "same", metav1.DeleteOptions{}) })
	stale := rest.CopyConfig(oldCfg)
	stale.Host = fresh.Status.Endpoints.Internal
	stale.TLSClientConfig.Insecure, stale.TLSClientConfig.CAData = true, nil
	if err := listNamespaces(ctx, stale); !apierrors.IsUnauthorized(err) {
		t.Errorf("the old cluster's admin kubeconfig on the new cluster: %v, want 401", err)
	}
	_, newCfg := adminKubeconfig(ctx, t, env.CS, ns, "same", 3600)
	if err := listNamespaces(ctx, newCfg); err != nil {
		t.Errorf("the new cluster's own admin kubeconfig: %v", err)
	}
}
