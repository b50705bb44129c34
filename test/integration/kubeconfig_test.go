package integration

import (
	"bytes"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// TestUserKubeconfig checks what GET clusters/{name}/kubeconfig gives a tenant: the
// cluster's proxy path on the host, the host's CA, an OIDC login and no secret; and that
// only tenant roles that may use the proxy get one.
func TestUserKubeconfig(t *testing.T) {
	ctx, ns := testContext(t), env.NewTenant(t)
	if _, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Create(ctx, cluster("prod", ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "create", "rolebinding", "dora-member", "-n", ns, "--clusterrole=containerservice:tenant-member", "--user=dora")
	kubectl(t, "create", "rolebinding", "vic-viewer", "-n", ns, "--clusterrole=containerservice:viewer", "--user=vic")
	_, dora := userKubeconfig(t, "dora")
	_, vic := userKubeconfig(t, "vic")

	var data []byte
	waitAllowed(t, func() error {
		kc, err := dora.ContainerserviceV1alpha1().Clusters(ns).GetKubeconfig(ctx, "prod", metav1.GetOptions{})
		if err == nil {
			data = kc.Kubeconfig
		}
		return err
	})
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatalf("the kubeconfig does not parse: %v\n%s", err, data)
	}
	cluster := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	wantServer := env.AdminConfig.Host + "/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/" + ns + "/clusters/prod/proxy"
	if cluster.Server != wantServer {
		t.Errorf("server %s, want %s", cluster.Server, wantServer)
	}
	if hostCA := env.AdminConfig.CAData; len(hostCA) == 0 || !bytes.Equal(bytes.TrimSpace(cluster.CertificateAuthorityData), bytes.TrimSpace(hostCA)) {
		t.Errorf("the kubeconfig does not trust the host's CA")
	}
	user := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]
	if user.Exec == nil || user.Exec.Command != "kubectl" || !strings.Contains(strings.Join(user.Exec.Args, " "),
		"oidc-login get-token --oidc-issuer-url="+oidcIssuer+" --oidc-client-id="+oidcClient) {
		t.Errorf("user is not an OIDC login: %+v", user)
	}
	if user.Token != "" || len(user.ClientKeyData) > 0 || user.Password != "" {
		t.Errorf("the user kubeconfig carries a secret")
	}
	if _, err := vic.ContainerserviceV1alpha1().Clusters(ns).GetKubeconfig(ctx, "prod", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a viewer gets a kubeconfig: %v, want Forbidden", err)
	}
	if _, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).GetKubeconfig(ctx, "nope", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("kubeconfig of a missing cluster: %v, want NotFound", err)
	}
	out := kubectl(t, "get", "--raw", "/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/"+ns+"/clusters/prod/kubeconfig")
	if !strings.Contains(out, `"kind":"ClusterKubeconfig"`) {
		t.Errorf("kubectl get --raw of the subresource: %s", out)
	}
}
