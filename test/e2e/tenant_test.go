package e2e

import (
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDeletingATenantDeletesItsClusters deletes a tenant's namespace on the host while it
// has a running cluster: the host's namespace controller deletes the Cluster through our
// API, our finalizer tears the control plane down, and the namespace goes away leaving no
// process, port or directory behind.
func TestDeletingATenantDeletesItsClusters(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	createReady(ctx, t, newCluster("doomed", ns))
	ports := clusterPorts(t, ns, "doomed")
	dir := env.ClusterDir(ns, "doomed")

	if err := env.Kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the tenant namespace is gone", func() (bool, error) {
		n, err := env.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err == nil {
			return false, fmt.Errorf("still terminating: %+v", n.Status.Conditions)
		}
		return false, err
	})
	assertNoTrace(t, ns, "doomed", ports, dir)
}
