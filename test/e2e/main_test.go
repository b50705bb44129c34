// Package e2e provisions real user clusters with the local driver, through the host's
// aggregator, and checks them from the outside as a tenant and an operator would: kubectl
// against the user clusters, process tables, listening ports and directories.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/issuer"
	"github.com/ucloudstack/containerservice/test/framework"
)

var env *framework.Env

const externalHost = "localhost"

func TestMain(m *testing.M) {
	// A distinct external host lets the tests tell the two endpoints apart; the people log
	// in with the stack's OIDC issuer.
	os.Exit(framework.Main(m, stack.Config{ServerArgs: []string{"--external-host=" + externalHost}, Users: &issuer.Users{Users: []issuer.User{
		{Name: "alice@example.com", Password: "alice", Groups: []string{"team-a"}},
		{Name: "bob@example.com", Password: "bob", Groups: []string{"team-a"}},
		{Name: "eve@example.com", Password: "eve", Groups: []string{"team-b"}},
		{Name: "carol@example.com", Password: "carol", Groups: []string{"payments"}},
	}}}, &env))
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 200ms until it returns true or ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within the deadline (last error: %v)", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// step runs f as the step name of t and reports whether it ran to its end without failing:
// unlike t.Run's result, a step that skipped itself counts as not done, since later steps
// cannot build on what it did not do.
func step(t *testing.T, name string, f func(t *testing.T)) bool {
	done := false
	return t.Run(name, func(t *testing.T) {
		f(t)
		done = true
	}) && done
}

// needs fails a step at once when an earlier step it builds on is not done (done is what
// step returned for it), naming what it lacks: its own checks would then fail for that
// reason alone and hide which step went wrong. It fails rather than skips, so that a step
// that did not run never reads as one that passed.
func needs(t *testing.T, done bool, what string) {
	t.Helper()
	if !done {
		t.Fatalf("not run: the step that gives %s did not pass", what)
	}
}

func newCluster(name, ns string) *v1alpha1.Cluster {
	return &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.ClusterSpec{Administrators: []v1alpha1.Subject{{Kind: v1alpha1.SubjectKindUser, Name: "alice@example.com"}}}}
}

// createReady creates a cluster and waits until its Ready condition is True.
func createReady(ctx context.Context, t *testing.T, c *v1alpha1.Cluster) *v1alpha1.Cluster {
	t.Helper()
	if _, err := env.CS.ContainerserviceV1alpha1().Clusters(c.Namespace).Create(ctx, c, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create cluster %s: %v", c.Name, err)
	}
	return waitCondition(ctx, t, c.Namespace, c.Name, "Ready", metav1.ConditionTrue)
}

// provision creates a cluster, waits until it is Ready, and deletes it when the test ends.
func provision(ctx context.Context, t *testing.T, ns, name string) *v1alpha1.Cluster {
	t.Helper()
	c := createReady(ctx, t, newCluster(name, ns))
	t.Cleanup(func() {
		_ = env.CS.ContainerserviceV1alpha1().Clusters(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return c
}

// assertNoTrace checks that a cluster left no process, listening port or directory.
func assertNoTrace(t *testing.T, ns, name string, ports map[string]int, dir string) {
	t.Helper()
	if procs := env.ClusterProcesses(ns, name); len(procs) != 0 {
		t.Errorf("processes of %s/%s left: %v", ns, name, procs)
	}
	for port, n := range ports {
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n)), time.Second); err == nil {
			conn.Close()
			t.Errorf("port %d (%s) of %s/%s still listening", n, port, ns, name)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory %s left: %v", dir, err)
	}
}

// waitCondition waits until the cluster's condition has the status and returns the cluster.
func waitCondition(ctx context.Context, t *testing.T, ns, name, condition string, status metav1.ConditionStatus) *v1alpha1.Cluster {
	t.Helper()
	var got *v1alpha1.Cluster
	eventually(ctx, t, fmt.Sprintf("cluster %s/%s %s=%s", ns, name, condition, status), func() (bool, error) {
		var err error
		got, err = env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, condition)
		if c == nil {
			return false, fmt.Errorf("no %s condition; phase %s", condition, got.Status.Phase)
		}
		return c.Status == status, fmt.Errorf("%s=%s: %s", condition, c.Status, c.Message)
	})
	return got
}

// adminKubeconfig asks the API for an admin kubeconfig and writes it to a file.
func adminKubeconfig(ctx context.Context, t *testing.T, client versioned.Interface, ns, name string, seconds int64) (string, *rest.Config) {
	t.Helper()
	resp, err := client.ContainerserviceV1alpha1().Clusters(ns).CreateAdminKubeconfig(ctx, name,
		&v1alpha1.AdminKubeconfigRequest{Spec: v1alpha1.AdminKubeconfigRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("admin kubeconfig of %s/%s: %v", ns, name, err)
	}
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := os.WriteFile(path, resp.Status.Kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(resp.Status.Kubeconfig)
	if err != nil {
		t.Fatalf("the admin kubeconfig does not parse: %v", err)
	}
	return path, cfg
}

// clusterPorts reads the ports the local driver gave a cluster.
func clusterPorts(t *testing.T, ns, name string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.ClusterDir(ns, name), "ports.json"))
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{}
	if err := json.Unmarshal(data, &ports); err != nil {
		t.Fatal(err)
	}
	return ports
}
