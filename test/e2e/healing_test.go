package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestKilledComponentIsRestarted kills a cluster's kube-apiserver: the status must show
// the outage, and the supervisor must bring it back.
func TestKilledComponentIsRestarted(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	ns := env.NewTenant(t)
	createReady(ctx, t, newCluster("heal", ns))
	t.Cleanup(func() {
		_ = env.CS.ContainerserviceV1alpha1().Clusters(ns).Delete(context.Background(), "heal", metav1.DeleteOptions{})
	})

	pid := pidOf(t, ns, "heal", "kube-apiserver")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(ctx, t, ns, "heal", "APIServerReady", metav1.ConditionFalse)
	if c.Status.Phase == "Running" || !hasCondition(c, "Ready", metav1.ConditionFalse) {
		t.Errorf("outage not shown: phase %s, conditions %v", c.Status.Phase, c.Status.Conditions)
	}
	waitCondition(ctx, t, ns, "heal", "Ready", metav1.ConditionTrue)
	if again := pidOf(t, ns, "heal", "kube-apiserver"); again == pid {
		t.Errorf("kube-apiserver still has pid %d", pid)
	}
}

// TestServerRestartKeepsClusters restarts containerservice-apiserver (which stops every
// control plane with it): each cluster must come back with what was stored inside it. A
// port taken meanwhile makes the cluster unhealthy with a message that says so, and it
// recovers once the port is free.
func TestServerRestartKeepsClusters(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	createReady(ctx, t, newCluster("keep", ns))
	t.Cleanup(func() {
		_ = env.CS.ContainerserviceV1alpha1().Clusters(ns).Delete(context.Background(), "keep", metav1.DeleteOptions{})
	})
	_, cfg := adminKubeconfig(ctx, t, env.CS, ns, "keep", 3600)
	inside := kubernetes.NewForConfigOrDie(cfg)
	if _, err := inside.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "survivor"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	env.StopServer()
	if procs := env.ClusterProcesses(ns, "keep"); len(procs) != 0 {
		t.Errorf("control plane processes outlived the server: %v", procs)
	}
	// Someone else takes the cluster's kube-apiserver port while the server is down.
	port := clusterPorts(t, ns, "keep")["apiserver"]
	squatter, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		out, _ := exec.Command("ss", "-tanp").CombinedOutput()
		t.Fatalf("take port %d: %v\n%s", port, err, out)
	}
	defer squatter.Close()
	if err := env.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(ctx, t, ns, "keep", "APIServerReady", metav1.ConditionFalse)
	eventually(ctx, t, "the condition names the port clash", func() (bool, error) {
		c, _ = env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "keep", metav1.GetOptions{})
		for _, cond := range c.Status.Conditions {
			if cond.Type == "APIServerReady" && strings.Contains(cond.Message, "address already in use") {
				return true, nil
			}
		}
		return false, nil
	})
	squatter.Close()
	waitCondition(ctx, t, ns, "keep", "Ready", metav1.ConditionTrue)

	eventually(ctx, t, "the ConfigMap is still there", func() (bool, error) {
		cm, err := inside.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{})
		return err == nil && cm.Data["k"] == "v", err
	})
}

func pidOf(t *testing.T, ns, name, binary string) int {
	t.Helper()
	for pid, b := range env.ClusterProcesses(ns, name) {
		if b == binary {
			return pid
		}
	}
	t.Fatalf("no %s process for %s/%s", binary, ns, name)
	return 0
}

// TestEtcdThatWillNotStart breaks a cluster's etcd data while the server is down: the
// status must say etcd does not start and why, and the cluster must recover by itself
// once the data is restored.
func TestEtcdThatWillNotStart(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	createReady(ctx, t, newCluster("broken", ns))
	t.Cleanup(func() {
		_ = env.CS.ContainerserviceV1alpha1().Clusters(ns).Delete(context.Background(), "broken", metav1.DeleteOptions{})
	})

	env.StopServer()
	db := filepath.Join(env.ClusterDir(ns, "broken"), "etcd", "member", "snap", "db")
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, []byte("this is not a bbolt database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "EtcdReady explains that etcd exits", func() (bool, error) {
		c, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "broken", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range c.Status.Conditions {
			if cond.Type == "EtcdReady" && cond.Status == metav1.ConditionFalse && strings.Contains(cond.Message, "etcd exited") {
				return c.Status.Phase != "Running" && hasCondition(c, "Ready", metav1.ConditionFalse), nil
			}
		}
		return false, nil
	})

	if err := os.WriteFile(db, good, 0o600); err != nil {
		t.Fatal(err)
	}
	waitCondition(ctx, t, ns, "broken", "Ready", metav1.ConditionTrue)
}
