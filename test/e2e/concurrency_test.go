package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestFiveClustersAtOnce creates five clusters together; all must become Ready, and
// deleting one while another is still provisioning must disturb neither.
func TestFiveClustersAtOnce(t *testing.T) {
	ctx := testContext(t, 6*time.Minute)
	ns := env.NewTenant(t)
	api := env.CS.ContainerserviceV1alpha1().Clusters(ns)
	start := time.Now()
	for i := range 5 {
		if _, err := api.Create(ctx, newCluster(fmt.Sprintf("c%d", i), ns), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i := range 6 {
			_ = api.Delete(context.Background(), fmt.Sprintf("c%d", i), metav1.DeleteOptions{})
		}
	})
	for i := range 5 {
		waitCondition(ctx, t, ns, fmt.Sprintf("c%d", i), "Ready", metav1.ConditionTrue)
	}
	t.Logf("five clusters Ready %s after create", time.Since(start).Round(100*time.Millisecond))

	if _, err := api.Create(ctx, newCluster("c5", ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := api.Delete(ctx, "c0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "c0 is gone", func() (bool, error) {
		_, err := api.Get(ctx, "c0", metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	waitCondition(ctx, t, ns, "c5", "Ready", metav1.ConditionTrue)
	for i := 1; i < 5; i++ {
		c := waitCondition(ctx, t, ns, fmt.Sprintf("c%d", i), "Ready", metav1.ConditionTrue)
		if c.Status.Phase != "Running" {
			t.Errorf("c%d: %s", i, c.Status.Phase)
		}
	}
	if procs := env.ClusterProcesses(ns, "c0"); len(procs) != 0 {
		t.Errorf("c0 left processes: %v", procs)
	}
}
