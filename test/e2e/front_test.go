package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// startDials is a stream of new clients of a cluster: every 20 ms a new connection to its
// published endpoint asks /readyz (open to anyone); one refused, cut or answered other
// than 200 is a failure.
func startDials(endpoint string) *traffic {
	return startLoop(20*time.Millisecond, func(int) error {
		// The server's certificate is not what this checks.
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}} //nolint:gosec
		resp, err := c.Get(endpoint + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("answered %d", resp.StatusCode)
		}
		return nil
	})
}

// serviceAccountClient returns a client of the cluster that authenticates as a
// ServiceAccount allowed to edit the default namespace: a workload's credential, which a
// rotation of the client CA does not revoke.
func serviceAccountClient(ctx context.Context, t *testing.T, admin *rest.Config) kubernetes.Interface {
	t.Helper()
	kube := kubernetes.NewForConfigOrDie(admin)
	sa, err := kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "prober"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prober"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: "default"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hour := int64(3600)
	tok, err := kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = tok.Status.Token
	return kubernetes.NewForConfigOrDie(cfg)
}

// TestRenewalRefusesNothing has a cluster's certificates near their end: they are issued
// again and kube-apiserver replaced behind the front while new clients connect every
// 20 ms and a workload sends requests on a kept connection. None fails; afterwards a
// different kube-apiserver process serves, the front is the same one, and the served
// certificate is the new one.
func TestRenewalRefusesNothing(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	ns := env.NewTenant(t)
	c := provision(ctx, t, ns, "renew")
	_, cfg := adminKubeconfig(ctx, t, env.CS, ns, "renew", 3600)
	oldAPIServer, oldFront, etcd := pidOf(t, ns, "renew", "kube-apiserver"), pidOf(t, ns, "renew", "containerservice-front"), pidOf(t, ns, "renew", "etcd")
	oldCert := servedCertificate(t, c.Status.Endpoints.Internal)
	// etcd is not restarted: it reads its certificate files at each new connection.
	etcdEndpoint := "https://127.0.0.1:" + strconv.Itoa(clusterPorts(t, ns, "renew")["etcd-client"])
	etcdClient, err := tls.LoadX509KeyPair(filepath.Join(env.ClusterDir(ns, "renew"), "pki", "apiserver-etcd-client.crt"),
		filepath.Join(env.ClusterDir(ns, "renew"), "pki", "apiserver-etcd-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	oldEtcdCert := servedCertificate(t, etcdEndpoint, etcdClient)

	newClients := startDials(c.Status.Endpoints.Internal)
	t.Cleanup(newClients.halt)
	workload := startTraffic(ctx, serviceAccountClient(ctx, t, cfg))
	t.Cleanup(workload.halt)

	// What the driver recorded of the issued certificates, their end brought within the
	// renewal window (30 days): the next look at the cluster renews them.
	leaves := filepath.Join(env.ClusterDir(ns, "renew"), "pki", "leaves.json")
	data, err := os.ReadFile(leaves)
	if err != nil {
		t.Fatal(err)
	}
	var record map[string]any
	if err := json.Unmarshal(data, &record); err != nil {
		t.Fatal(err)
	}
	record["notAfter"] = time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	data, _ = json.Marshal(record)
	if err := atomicfile.WriteFile(leaves, data, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the certificates renewed and the old kube-apiserver gone", func() (bool, error) {
		if servedCertificate(t, c.Status.Endpoints.Internal) == oldCert {
			return false, nil
		}
		_, old := env.ClusterProcesses(ns, "renew")[oldAPIServer]
		return !old, nil
	})
	waitCondition(ctx, t, ns, "renew", "Ready", metav1.ConditionTrue)
	eventually(ctx, t, "the phase back to Running", func() (bool, error) {
		got, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "renew", metav1.GetOptions{})
		return err == nil && got.Status.Phase == "Running", err
	})
	newClients.finish(t)
	workload.finish(t)
	if front := pidOf(t, ns, "renew", "containerservice-front"); front != oldFront {
		t.Errorf("the front was restarted (pid %d, was %d)", front, oldFront)
	}
	if now := pidOf(t, ns, "renew", "etcd"); now != etcd {
		t.Errorf("etcd was restarted (pid %d, was %d)", now, etcd)
	}
	if now := servedCertificate(t, etcdEndpoint, etcdClient); now == oldEtcdCert || now == "" {
		t.Errorf("etcd serves certificate %q after the renewal, was %q: want the renewed one", now, oldEtcdCert)
	}
	t.Logf("across the renewal: %d new connections and %d requests of a workload, none failed", newClients.ok, workload.ok)
}

// servedCertificate returns the serial number of the certificate an endpoint serves, ""
// when it cannot be reached; client is the certificate presented, if any.
func servedCertificate(t *testing.T, endpoint string, client ...tls.Certificate) string {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(endpoint, "https://"), &tls.Config{InsecureSkipVerify: true, Certificates: client}) //nolint:gosec // only read
	if err != nil {
		return ""
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
