package integration

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestObjectsSurviveARestart stops the server (its embedded etcd with it) and starts it on
// the same data directory. It runs last in the package (files run in name order).
func TestObjectsSurviveARestart(t *testing.T) {
	ctx, ns := testContext(t), env.NewTenant(t)
	c, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Create(ctx, cluster("durable", ns), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env.StopServer()
	if _, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "durable", metav1.GetOptions{}); err == nil {
		t.Fatal("the API still answers with the server stopped")
	}
	if err := env.StartServer(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	got, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "durable", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if got.UID != c.UID || got.Spec.Network.PodCIDRs[0] != "10.244.0.0/16" {
		t.Errorf("object changed across the restart: %+v", got)
	}
}
