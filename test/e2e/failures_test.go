package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMissingBinaries runs the server with an empty --kube-bin-dir, as on a machine where
// hack/kube-binaries.sh never ran: a new cluster must fail saying what to do, and come up
// by itself once the binaries are there.
func TestMissingBinaries(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	empty := t.TempDir()
	env.StopServer()
	t.Cleanup(func() {
		// Later tests need the real binaries.
		env.StopServer()
		if err := env.StartServer(context.Background()); err != nil {
			t.Errorf("restart the server: %v", err)
		}
	})
	if err := env.StartServer(ctx, "--kube-bin-dir="+empty); err != nil {
		t.Fatal(err)
	}
	if _, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Create(ctx, newCluster("nobin", ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.CS.ContainerserviceV1alpha1().Clusters(ns).Delete(context.Background(), "nobin", metav1.DeleteOptions{})
	})
	eventually(ctx, t, "the cluster fails saying what to do", func() (bool, error) {
		c, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "nobin", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range c.Status.Conditions {
			if cond.Type == "Ready" && cond.Reason == "ProvisioningFailed" && strings.Contains(cond.Message, "run hack/kube-binaries.sh") {
				return c.Status.Phase == "Failed", nil
			}
		}
		return false, nil
	})

	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		target, err := filepath.Abs(filepath.Join(env.Stack.BinDir(), b))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(empty, b)); err != nil {
			t.Fatal(err)
		}
	}
	c := waitCondition(ctx, t, ns, "nobin", "Ready", metav1.ConditionTrue)
	if c.Status.Phase != "Running" {
		t.Errorf("recovered cluster is %s", c.Status.Phase)
	}
}
