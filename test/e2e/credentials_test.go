package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
)

// TestCredentialsIsolationAndRotation provisions two clusters and tries, as an attacker
// holding one cluster's credentials, to reach the other; then rotates one cluster's
// credentials and checks that every earlier admin kubeconfig stops working.
func TestCredentialsIsolationAndRotation(t *testing.T) {
	ctx := testContext(t, 6*time.Minute)
	ns := env.NewTenant(t)
	createReady(ctx, t, newCluster("a", ns))
	b := createReady(ctx, t, newCluster("b", ns))
	t.Cleanup(func() {
		for _, n := range []string{"a", "b"} {
			_ = env.CS.ContainerserviceV1alpha1().Clusters(ns).Delete(context.Background(), n, metav1.DeleteOptions{})
		}
	})

	_, aCfg := adminKubeconfig(ctx, t, env.CS, ns, "a", 600)
	if user := whoami(ctx, t, aCfg); user != v1alpha1.BreakGlassUserPrefix+"admin" {
		t.Errorf("the admin kubeconfig names %q, want the requesting user admin behind the break-glass prefix", user)
	}
	cert, _ := pem.Decode(aCfg.CertData)
	parsed, err := x509.ParseCertificate(cert.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if life := time.Until(parsed.NotAfter); life > 10*time.Minute+time.Second || life < 9*time.Minute {
		t.Errorf("a 600s kubeconfig is valid for %s", life)
	}

	// Cluster A's credential against cluster B's kube-apiserver: B's CAs never signed it.
	stolen := rest.CopyConfig(aCfg)
	stolen.Host = b.Status.Endpoints.Internal
	stolen.TLSClientConfig.Insecure, stolen.TLSClientConfig.CAData = true, nil
	if err := listNamespaces(ctx, stolen); !apierrors.IsUnauthorized(err) {
		t.Errorf("cluster a's admin credential on cluster b: %v, want 401", err)
	}

	// Each etcd accepts only its own cluster's client certificates.
	if err := etcdHealth(t, ns, "a", "a"); err != nil {
		t.Errorf("cluster a's etcd with its own client certificate: %v", err)
	}
	if err := etcdHealth(t, ns, "b", "a"); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("cluster b's etcd with cluster a's client certificate: %v, want a TLS refusal", err)
	}

	// Admin kubeconfigs are for callers RBAC allows: a tenant member may not mint one.
	kubectlOrFail(ctx, t, "create", "rolebinding", "eve", "-n", ns, "--clusterrole=containerservice:tenant-member", "--user=eve")
	eveCfg, err := env.UserConfig("eve")
	if err != nil {
		t.Fatal(err)
	}
	eve := versioned.NewForConfigOrDie(eveCfg)
	eventually(ctx, t, "eve sees the tenant", func() (bool, error) {
		_, err := eve.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "a", metav1.GetOptions{})
		return err == nil, err
	})
	seconds := int64(600)
	_, err = eve.ContainerserviceV1alpha1().Clusters(ns).CreateAdminKubeconfig(ctx, "a", &v1alpha1.AdminKubeconfigRequest{
		Spec: v1alpha1.AdminKubeconfigRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("tenant member asks for an admin kubeconfig: %v, want Forbidden", err)
	}
	tooLong := int64(7 * 24 * 3600)
	_, err = env.CS.ContainerserviceV1alpha1().Clusters(ns).CreateAdminKubeconfig(ctx, "a", &v1alpha1.AdminKubeconfigRequest{
		Spec: v1alpha1.AdminKubeconfigRequestSpec{ExpirationSeconds: &tooLong}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.expirationSeconds") {
		t.Errorf("a week-long admin kubeconfig: %v, want Invalid naming spec.expirationSeconds", err)
	}

	// A tenant admin of another tenant may not mint one either.
	other := env.NewTenant(t)
	kubectlOrFail(ctx, t, "create", "rolebinding", "oscar", "-n", other, "--clusterrole=containerservice:tenant-admin", "--user=oscar")
	oscarCfg, err := env.UserConfig("oscar")
	if err != nil {
		t.Fatal(err)
	}
	oscar := versioned.NewForConfigOrDie(oscarCfg)
	eventually(ctx, t, "oscar administers his tenant", func() (bool, error) {
		_, err := oscar.ContainerserviceV1alpha1().Clusters(other).List(ctx, metav1.ListOptions{})
		return err == nil, err
	})
	_, err = oscar.ContainerserviceV1alpha1().Clusters(ns).CreateAdminKubeconfig(ctx, "a", &v1alpha1.AdminKubeconfigRequest{
		Spec: v1alpha1.AdminKubeconfigRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("another tenant's admin asks for an admin kubeconfig: %v, want Forbidden", err)
	}

	// Rotation: the documented operation is an annotation with a new value. Every
	// component that authenticates with the client CA restarts; kube-apiserver is
	// replaced behind the cluster's front, so that no client is refused meanwhile: new
	// connections every 20 ms, and a workload's kept-alive client, all succeed.
	// A running cluster that rotates is Updating, not Provisioning, until all is done.
	newClients := startDials(aCfg.Host)
	t.Cleanup(newClients.halt)
	workload := startTraffic(ctx, serviceAccountClient(ctx, t, aCfg))
	t.Cleanup(workload.halt)
	before := env.ClusterProcesses(ns, "a")
	current, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=a", ResourceVersion: current.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Stop()
	kubectlOrFail(ctx, t, "annotate", "cluster/a", "-n", ns, "--overwrite", v1alpha1.RotateCredentialsAnnotation+"=r1")
	var phases []v1alpha1.ClusterPhase
	for done := false; !done; {
		select {
		case ev, ok := <-watch.ResultChan():
			if !ok {
				t.Fatalf("watch closed; phases seen %v", phases)
			}
			c, isCluster := ev.Object.(*v1alpha1.Cluster)
			if !isCluster {
				continue
			}
			if len(phases) == 0 || phases[len(phases)-1] != c.Status.Phase {
				phases = append(phases, c.Status.Phase)
			}
			done = c.Status.CredentialsRotation == "r1" && c.Status.Phase == v1alpha1.ClusterRunning
		case <-ctx.Done():
			t.Fatalf("rotation r1 did not complete; phases seen %v", phases)
		}
	}
	if !slices.Contains(phases, v1alpha1.ClusterUpdating) || slices.Contains(phases, v1alpha1.ClusterProvisioning) {
		t.Errorf("phases during the rotation %v, want Running → Updating → Running", phases)
	}
	newClients.finish(t)
	workload.finish(t)
	t.Logf("across the rotation: %d new connections and %d requests of a workload, none failed", newClients.ok, workload.ok)
	after := env.ClusterProcesses(ns, "a")
	for pid, binary := range before {
		restarted := binary == "kube-apiserver" || binary == "kube-controller-manager" || binary == "kube-scheduler"
		if _, same := after[pid]; same == restarted {
			t.Errorf("%s (pid %d) restarted: %v, want %v", binary, pid, !same, restarted)
		}
	}
	eventually(ctx, t, "the old admin kubeconfig is refused", func() (bool, error) {
		err := listNamespaces(ctx, aCfg)
		return apierrors.IsUnauthorized(err), err
	})
	_, fresh := adminKubeconfig(ctx, t, env.CS, ns, "a", 600)
	eventually(ctx, t, "a new admin kubeconfig works", func() (bool, error) {
		err := listNamespaces(ctx, fresh)
		return err == nil, err
	})
}

func kubectlOrFail(ctx context.Context, t *testing.T, args ...string) {
	t.Helper()
	if _, err := env.Kubectl(ctx, nil, args...); err != nil {
		t.Fatal(err)
	}
}

func listNamespaces(ctx context.Context, cfg *rest.Config) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	return err
}

func whoami(ctx context.Context, t *testing.T, cfg *rest.Config) string {
	t.Helper()
	client := kubernetes.NewForConfigOrDie(cfg)
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	return review.Status.UserInfo.Username
}

// etcdHealth asks cluster target's etcd for /health with the etcd client certificate of
// cluster from, trusting target's etcd CA.
func etcdHealth(t *testing.T, ns, target, from string) error {
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(env.ClusterDir(ns, target), "pki", "etcd-ca.crt"))
	if err != nil {
		return err
	}
	pool.AppendCertsFromPEM(caPEM)
	pair, err := tls.LoadX509KeyPair(filepath.Join(env.ClusterDir(ns, from), "pki", "apiserver-etcd-client.crt"),
		filepath.Join(env.ClusterDir(ns, from), "pki", "apiserver-etcd-client.key"))
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	port := clusterPorts(t, ns, target)["etcd-client"]
	resp, err := client.Get("https://127.0.0.1:" + strconv.Itoa(port) + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd answered %d", resp.StatusCode)
	}
	return nil
}
