package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// TestClusterLifecycle is the README walkthrough: create, wait for Ready with kubectl,
// get an admin kubeconfig, look inside, delete, and find no trace left.
func TestClusterLifecycle(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	if _, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Create(ctx, newCluster("prod", ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := env.Kubectl(ctx, nil, "wait", "--for=condition=Ready", "cluster/prod", "-n", ns, "--timeout=120s"); err != nil {
		t.Fatalf("kubectl wait: %v", err)
	}
	t.Logf("cluster Ready %s after create", time.Since(start).Round(100*time.Millisecond))

	c, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "prod", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status.Phase != v1alpha1.ClusterRunning || c.Status.Version != "v1.37.1" || c.Status.ObservedGeneration != c.Generation {
		t.Errorf("status: phase %s version %s observed %d of %d", c.Status.Phase, c.Status.Version, c.Status.ObservedGeneration, c.Generation)
	}
	if !strings.HasPrefix(c.Status.Endpoints.Internal, "https://127.0.0.1:") || !strings.HasPrefix(c.Status.Endpoints.External, "https://"+externalHost+":") {
		t.Errorf("endpoints: %+v", c.Status.Endpoints)
	}
	for _, cond := range []string{"EtcdReady", "APIServerReady", "ControllerManagerReady", "SchedulerReady", "Ready"} {
		if !hasCondition(c, cond, metav1.ConditionTrue) {
			t.Errorf("condition %s is not True: %v", cond, c.Status.Conditions)
		}
	}
	if out, err := env.Kubectl(ctx, nil, "get", "clusters", "-n", ns); err != nil || !strings.Contains(out, "Running") || !strings.Contains(out, c.Status.Endpoints.External) {
		t.Errorf("kubectl get clusters: %q %v", out, err)
	}

	kubeconfig, external := adminKubeconfig(ctx, t, env.CS, ns, "prod", 3600)
	if external.Host != c.Status.Endpoints.External {
		t.Errorf("default admin kubeconfig points at %s, want the external endpoint %s", external.Host, c.Status.Endpoints.External)
	}
	seconds := int64(600)
	internal, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).CreateAdminKubeconfig(ctx, "prod", &v1alpha1.AdminKubeconfigRequest{
		Spec: v1alpha1.AdminKubeconfigRequestSpec{ExpirationSeconds: &seconds, Endpoint: v1alpha1.EndpointInternal}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := clientcmd.RESTConfigFromKubeConfig(internal.Status.Kubeconfig); err != nil || cfg.Host != c.Status.Endpoints.Internal {
		t.Errorf("internal admin kubeconfig: %v, host %v, want %s", err, cfg, c.Status.Endpoints.Internal)
	}
	out, err := env.KubectlAs(ctx, kubeconfig, nil, "get", "ns", "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get ns inside the cluster: %v", err)
	}
	for _, want := range []string{"namespace/default", "namespace/kube-system", "namespace/ucs-system", "namespace/ucs-users"} {
		if !strings.Contains(out, want) {
			t.Errorf("user cluster lacks %s: %q", want, out)
		}
	}
	checkBootstrap(ctx, t, kubeconfig)

	dir := env.ClusterDir(ns, "prod")
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("cluster directory %s: %v, mode %v, want 0700", dir, err, info.Mode().Perm())
	}
	ports := clusterPorts(t, ns, "prod")
	if procs := env.ClusterProcesses(ns, "prod"); len(procs) != 5 {
		t.Errorf("running processes of the cluster: %v, want etcd, containerservice-front, kube-apiserver, kube-controller-manager, kube-scheduler", procs)
	}

	// The cluster's Nodes and Plugins go with it; a Node for a cluster that does not exist
	// is refused with the field named.
	api := env.CS.ContainerserviceV1alpha1()
	if _, err := api.Nodes(ns).Create(ctx, &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: "prod-1"}, Spec: v1alpha1.NodeSpec{ClusterName: "prod"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Plugins(ns).Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "prod-metrics"}, Spec: v1alpha1.PluginSpec{ClusterName: "prod", Type: "csi"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Nodes(ns).Create(ctx, &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ghost-1"}, Spec: v1alpha1.NodeSpec{ClusterName: "ghost"}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.clusterName") {
		t.Errorf("a node of a cluster that does not exist: %v, want Invalid naming spec.clusterName", err)
	}

	if _, err := env.Kubectl(ctx, nil, "delete", "cluster/prod", "-n", ns, "--wait=true", "--timeout=120s"); err != nil {
		t.Fatalf("kubectl delete: %v", err)
	}
	assertNoTrace(t, ns, "prod", ports, dir)
	if nodes, err := api.Nodes(ns).List(ctx, metav1.ListOptions{}); err != nil || len(nodes.Items) != 0 {
		t.Errorf("nodes after their cluster was deleted: %v %v", nodes, err)
	}
	if plugins, err := api.Plugins(ns).List(ctx, metav1.ListOptions{}); err != nil || len(plugins.Items) != 0 {
		t.Errorf("plugins after their cluster was deleted: %v %v", plugins, err)
	}
}

// checkBootstrap looks at what the platform put into the cluster: the administrator's
// ServiceAccount bound to cluster-admin, the permission groups, and a proxy identity that
// may impersonate ServiceAccounts of ucs-users and nothing else.
func checkBootstrap(ctx context.Context, t *testing.T, kubeconfig string) {
	t.Helper()
	sa := v1alpha1.ServiceAccountName("alice@example.com")
	// The people's ServiceAccounts are the project controller's (administrators
	// included), made as the cluster turns Running; the binding needs none to exist.
	eventually(ctx, t, "the administrator's ServiceAccount "+sa, func() (bool, error) {
		out, err := env.KubectlAs(ctx, kubeconfig, nil, "get", "sa", sa, "-n", "ucs-users", "-o", "jsonpath={.metadata.annotations}")
		return err == nil && strings.Contains(out, "alice@example.com"), fmt.Errorf("%q %v", out, err)
	})
	can := func(args ...string) string {
		out, _ := env.KubectlAs(ctx, kubeconfig, nil, append([]string{"auth", "can-i"}, args...)...)
		return strings.TrimSpace(out)
	}
	if got := can("*", "*", "--as=system:serviceaccount:ucs-users:"+sa); got != "yes" {
		t.Errorf("administrator's ServiceAccount is not cluster-admin: %q", got)
	}
	for _, r := range []string{"ucs:admin", "ucs:edit", "ucs:view"} {
		if _, err := env.KubectlAs(ctx, kubeconfig, nil, "get", "clusterrole", r); err != nil {
			t.Errorf("permission group %s: %v", r, err)
		}
	}
	proxy := "--as=" + v1alpha1.ProxyUser
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"impersonate", "serviceaccounts/" + sa, "-n", "ucs-users", proxy}, "yes"},
		{[]string{"impersonate", "serviceaccounts/default", "-n", "kube-system", proxy}, "no"},
		{[]string{"impersonate", "users/admin", proxy}, "no"},
		{[]string{"impersonate", "groups/system:masters", proxy}, "no"},
		{[]string{"get", "secrets", "-n", "kube-system", proxy}, "no"},
	} {
		if got := can(tc.args...); got != tc.want {
			t.Errorf("kubectl auth can-i %v = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func hasCondition(c *v1alpha1.Cluster, t string, s metav1.ConditionStatus) bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == t {
			return cond.Status == s
		}
	}
	return false
}

// TestVersionChangeIsRefused: upgrades do not exist yet, so a version change must be refused
// with a message saying so, not silently ignored.
func TestVersionChangeIsRefused(t *testing.T) {
	ctx := testContext(t, time.Minute)
	ns := env.NewTenant(t)
	api := env.CS.ContainerserviceV1alpha1().Clusters(ns)
	if _, err := api.Create(ctx, newCluster("v", ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Delete(context.Background(), "v", metav1.DeleteOptions{}) })
	// The controller updates the cluster meanwhile (finalizer, status): retry on conflicts.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := api.Get(ctx, "v", metav1.GetOptions{})
		if err != nil {
			return err
		}
		c.Spec.Version = "v1.38.0"
		_, err = api.Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "not supported yet") {
		t.Errorf("version change: %v", err)
	}
}
