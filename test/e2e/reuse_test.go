package e2e

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// TestANameIsNeverReusedWithItsData plays a tenant admin who deletes a cluster and strips
// its finalizer by hand, then creates a cluster of the same name: the old control plane
// must be gone, and the new cluster must share nothing with it (its credentials get 401).
func TestANameIsNeverReusedWithItsData(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	api := env.CS.ContainerserviceV1alpha1().Clusters(ns)
	createReady(ctx, t, newCluster("same", ns))
	_, oldCfg := adminKubeconfig(ctx, t, env.CS, ns, "same", 3600)
	oldProcs := env.ClusterProcesses(ns, "same")

	// Remove the finalizer first, then delete: the object vanishes at once, before the
	// controller can tear anything down.
	if _, err := api.Patch(ctx, "same", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
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
