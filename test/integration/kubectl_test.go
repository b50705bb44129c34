package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
)

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := env.Kubectl(testContext(t), nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func directClient(t *testing.T) *rest.RESTClient {
	t.Helper()
	cfg, err := env.DirectConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c.Discovery().RESTClient().(*rest.RESTClient)
}

func TestKubectlGetShowsColumns(t *testing.T) {
	ns := env.NewTenant(t)
	for _, f := range []string{"cluster", "node", "plugin", "project"} {
		data, err := os.ReadFile(filepath.Join(env.Root, "artifacts", "examples", f+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		manifest := strings.Replace(string(data), "namespace: acme", "namespace: "+ns, 1)
		if _, err := env.Kubectl(testContext(t), []byte(manifest), "apply", "-f", "-"); err != nil {
			t.Fatalf("apply example %s: %v", f, err)
		}
	}

	tables := map[string][]string{
		"clusters": {"NAME", "STATUS", "VERSION", "NODES", "ENDPOINT", "AGE"},
		"csnode":   {"NAME", "CLUSTER", "STATUS", "CPU", "MEMORY", "GPU", "PODS", "AGE"},
		"plugins":  {"NAME", "CLUSTER", "TYPE", "VERSION", "READY", "PHASE", "AGE"},
		"projects": {"NAME", "CLUSTERS", "MEMBERS", "STATUS", "AGE"},
	}
	rows := map[string][]string{
		"clusters": {"prod", "Pending", "v1.37.1", "0/0"},
		"csnode":   {"prod-gpu-1", "prod", "Pending", "8", "32Gi", "1", "nvidia-tesla-t4"},
		"plugins":  {"prod-monitoring", "prod", "monitoring", "0.95.2", "0/0", "Pending"},
		"projects": {"payments", "prod", "2", "Pending"},
	}
	for resource, header := range tables {
		lines := strings.Split(strings.TrimSpace(kubectl(t, "get", resource, "-n", ns)), "\n")
		if len(lines) != 2 {
			t.Errorf("kubectl get %s: %q", resource, lines)
			continue
		}
		if got := strings.Fields(lines[0]); strings.Join(got, " ") != strings.Join(header, " ") {
			t.Errorf("kubectl get %s header %v, want %v", resource, got, header)
		}
		if got := strings.Fields(lines[1]); strings.Join(got[:len(rows[resource])], " ") != strings.Join(rows[resource], " ") {
			t.Errorf("kubectl get %s row %v, want it to start with %v", resource, got, rows[resource])
		}
	}

	if out := kubectl(t, "get", "cls", "-n", ns, "-o", "name"); strings.TrimSpace(out) != "cluster.containerservice.ucloudstack.io/prod" {
		t.Errorf("short name cls: %q", out)
	}
	all := kubectl(t, "get", "containerservice", "-n", ns, "-o", "name")
	for _, want := range []string{"cluster.containerservice.ucloudstack.io/prod", "node.containerservice.ucloudstack.io/prod-gpu-1",
		"plugin.containerservice.ucloudstack.io/prod-monitoring", "project.containerservice.ucloudstack.io/payments"} {
		if !strings.Contains(all, want) {
			t.Errorf("category containerservice lacks %s: %q", want, all)
		}
	}
	wide := kubectl(t, "get", "clusters", "-n", ns, "-o", "wide")
	if !strings.Contains(wide, "CONTROL-PLANE") || !strings.Contains(wide, "IPv4") {
		t.Errorf("-o wide lacks the wide columns: %q", wide)
	}
	if out := kubectl(t, "get", "csnode", "-n", ns, "--field-selector", "spec.clusterName=dev", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("field selector spec.clusterName=dev returned %q", out)
	}
}

func TestKubectlExplain(t *testing.T) {
	out := kubectl(t, "explain", "clusters.spec")
	for _, want := range []string{"controlPlane", "network", "administrators", "cluster-admin", "version"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain clusters.spec lacks %q:\n%s", want, out)
		}
	}
	out = kubectl(t, "explain", "projects.spec.members.role")
	if !strings.Contains(out, "admin, edit or view") {
		t.Errorf("kubectl explain projects.spec.members.role:\n%s", out)
	}
	out = kubectl(t, "explain", "nodes.spec.clusterName", "--api-version=containerservice.ucloudstack.io/v1alpha1")
	if !strings.Contains(out, "cannot be changed") {
		t.Errorf("kubectl explain of our nodes:\n%s", out)
	}
}

func TestKubectlRefusesBadInputNamingTheField(t *testing.T) {
	ns := env.NewTenant(t)
	manifest := `apiVersion: containerservice.ucloudstack.io/v1alpha1
kind: Cluster
metadata: {name: bad, namespace: ` + ns + `}
spec:
  version: v1.20.0
  network: {ipFamilies: [IPv6], podCIDRs: [10.244.0.0/16]}
`
	_, err := env.Kubectl(testContext(t), []byte(manifest), "apply", "-f", "-")
	if err == nil {
		t.Fatal("a bad cluster was accepted")
	}
	for _, want := range []string{"spec.version", "spec.network.podCIDRs[0]", "must be an IPv6 range"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("kubectl error does not mention %q: %v", want, err)
		}
	}
}

// userKubeconfig writes a kubeconfig for a host user authenticated by client certificate.
func userKubeconfig(t *testing.T, user string) (string, versioned.Interface) {
	t.Helper()
	cfg, err := env.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	data, err := pki.Kubeconfig(cfg.Host, cfg.CAData, cfg.CertData, cfg.KeyData, user)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	client, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return path, client
}

func TestTenantRolesIsolateTenants(t *testing.T) {
	ctx := testContext(t)
	a, b := env.NewTenant(t), env.NewTenant(t)
	for _, ns := range []string{a, b} {
		if _, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Create(ctx, cluster("c", ns), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kubectl(t, "create", "rolebinding", "alice-member", "-n", a, "--clusterrole=containerservice:tenant-member", "--user=alice")
	kubectl(t, "create", "rolebinding", "bob-admin", "-n", a, "--clusterrole=containerservice:tenant-admin", "--user=bob")
	kubectl(t, "create", "rolebinding", "carol-viewer", "-n", a, "--clusterrole=containerservice:viewer", "--user=carol")

	aliceConfig, alice := userKubeconfig(t, "alice")
	_, bob := userKubeconfig(t, "bob")
	_, carol := userKubeconfig(t, "carol")
	_, mallory := userKubeconfig(t, "mallory")

	// Each RBAC decision is made by the host and may take a moment to see a new binding.
	waitAllowed(t, func() error {
		_, err := alice.ContainerserviceV1alpha1().Clusters(a).List(ctx, metav1.ListOptions{})
		return err
	})

	if list, err := alice.ContainerserviceV1alpha1().Clusters(a).List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 1 {
		t.Errorf("member lists her tenant: %v", err)
	}
	if _, err := alice.ContainerserviceV1alpha1().Clusters(b).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("member lists another tenant: %v, want Forbidden", err)
	}
	if _, err := alice.ContainerserviceV1alpha1().Clusters(b).Get(ctx, "c", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("member gets another tenant's cluster: %v, want Forbidden", err)
	}
	if _, err := alice.ContainerserviceV1alpha1().Clusters("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("member lists clusters of all tenants: %v, want Forbidden", err)
	}
	if _, err := alice.ContainerserviceV1alpha1().Clusters(a).Create(ctx, cluster("mine", a), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("member creates a cluster: %v, want Forbidden", err)
	}
	c, _ := env.CS.ContainerserviceV1alpha1().Clusters(a).Get(ctx, "c", metav1.GetOptions{})
	c.Status.Phase = "Running"
	if _, err := bob.ContainerserviceV1alpha1().Clusters(a).UpdateStatus(ctx, c, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("tenant admin writes status: %v, want Forbidden", err)
	}

	waitAllowed(t, func() error {
		_, err := bob.ContainerserviceV1alpha1().Clusters(a).Create(ctx, cluster("bobs", a), metav1.CreateOptions{})
		return err
	})
	if _, err := bob.ContainerserviceV1alpha1().Clusters(b).Create(ctx, cluster("bobs", b), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("tenant admin creates in another tenant: %v, want Forbidden", err)
	}
	if got, err := env.CS.ContainerserviceV1alpha1().Clusters(a).Get(ctx, "bobs", metav1.GetOptions{}); err != nil ||
		len(got.Spec.Administrators) != 1 || got.Spec.Administrators[0].Name != "bob" {
		t.Errorf("bob's cluster does not make bob its administrator: %v %v", err, got)
	}

	waitAllowed(t, func() error {
		_, err := carol.ContainerserviceV1alpha1().Nodes(a).List(ctx, metav1.ListOptions{})
		return err
	})
	if err := carol.ContainerserviceV1alpha1().Clusters(a).Delete(ctx, "c", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("viewer deletes: %v, want Forbidden", err)
	}
	if _, err := mallory.ContainerserviceV1alpha1().Clusters(a).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("an unbound user lists a tenant: %v, want Forbidden", err)
	}

	// The same through kubectl, as the user would see it.
	if out, err := env.KubectlAs(ctx, aliceConfig, nil, "get", "clusters", "-n", a, "-o", "name"); err != nil || strings.TrimSpace(out) == "" {
		t.Errorf("kubectl as member in her tenant: %q %v", out, err)
	}
	if _, err := env.KubectlAs(ctx, aliceConfig, nil, "get", "clusters", "-n", b); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("kubectl as member in another tenant: %v, want forbidden", err)
	}
}

// waitAllowed retries f while the host's authorizer has not yet seen a new RoleBinding.
func waitAllowed(t *testing.T, f func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return
		}
		if !apierrors.IsForbidden(err) {
			t.Fatalf("unexpected error: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("still forbidden after 30s: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
