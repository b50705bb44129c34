package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

const kwokNode = `apiVersion: v1
kind: Node
metadata:
  name: kwok-0
  labels:
    type: kwok
`

const appPod = `apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: default
spec:
  containers:
  - name: app
    image: registry.example/app:1
    ports:
    - containerPort: 8080
`

// criLogLine is a line of a container log file as the container runtime writes it (and
// the kubelet, here kwok, reads it).
func criLogLine(msg string) string {
	return time.Now().UTC().Format(time.RFC3339Nano) + " stdout F " + msg + "\n"
}

// heldFor is how long the test keeps a watch and port-forwards idle: longer than the 60 s
// idle timeouts that proxies and load balancers commonly have.
const heldFor = 75 * time.Second

// TestKubectlThroughTheProxy is a tenant's day with the real kubectl, through the host's
// aggregator and our proxy, with the kubeconfig from clusters/{name}/kubeconfig and an
// OIDC login: get, list, apply, delete, a watch and two port-forwards (WebSocket and
// SPDY) held idle for more than 70 s, logs -f, and exec over WebSocket and over SPDY,
// against a pod on a kwok node. The user cluster's audit log shows it was all alice's
// ServiceAccount, through the proxy.
func TestKubectlThroughTheProxy(t *testing.T) {
	ctx := testContext(t, 10*time.Minute)
	ns := env.NewTenant(t)
	kubectlOrFail(ctx, t, "create", "rolebinding", "alice", "-n", ns, "--clusterrole=containerservice:tenant-member", "--user=alice@example.com")
	c := newCluster("day", ns)
	c.Spec.Administrators = []v1alpha1.Subject{{Kind: v1alpha1.SubjectKindUser, Name: "alice@example.com"}}
	createReady(ctx, t, c)

	// What the pod "runs": exec in a directory of the test, a log file kwok follows, and
	// an echo server behind its port 8080.
	dir := env.TempDir(t)
	logFile := filepath.Join(dir, "app.log")
	if err := os.WriteFile(logFile, []byte(criLogLine("started")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "greeting"), []byte("hello from the pod\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startKwok(ctx, t, ns, "day", dir, fmt.Sprintf(kwokWorkload, dir, logFile, echoServer(t)))

	alice := newTenantKubectl(ctx, t, ns, "day", "alice@example.com", "alice")
	if out := alice.must(ctx, t, kwokNode, "apply", "-f", "-"); !strings.Contains(out, "node/kwok-0 created") {
		t.Fatalf("apply the node: %q", out)
	}
	alice.must(ctx, t, "", "wait", "--for=condition=Ready", "node/kwok-0", "--timeout=2m")
	eventually(ctx, t, "the pod is created (once the default ServiceAccount exists)", func() (bool, error) {
		_, _, err := alice.run(ctx, nil, appPod, "apply", "-f", "-")
		return err == nil, err
	})
	alice.must(ctx, t, "", "wait", "--for=condition=Ready", "pod/app", "--timeout=2m")

	// Held from here: a watch, and a port-forward over each protocol with a connection
	// each that stays idle.
	heldSince := time.Now()
	watch := alice.start(ctx, t, nil, "get", "configmaps", "--watch-only", "-o", "name")
	forwards := map[string]*stream{
		"websocket": alice.start(ctx, t, nil, "port-forward", "pod/app", ":8080"),
		"spdy":      alice.start(ctx, t, []string{"KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}, "port-forward", "pod/app", ":8080"),
	}
	idle := map[string]net.Conn{}
	ports := map[string]string{}
	for proto, s := range forwards {
		line := s.expect(t, "Forwarding from 127.0.0.1:", time.Minute)
		ports[proto] = regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindStringSubmatch(line)[1]
		conn, err := net.Dial("tcp", "127.0.0.1:"+ports[proto])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		echoes(t, conn, "first over "+proto)
		idle[proto] = conn
	}

	t.Run("get and list", func(t *testing.T) {
		if got := alice.must(ctx, t, "", "get", "pod", "app", "-o", "jsonpath={.spec.nodeName} {.status.phase}"); got != "kwok-0 Running" {
			t.Errorf("the pod is %q, want it Running on kwok-0", got)
		}
		if got := alice.must(ctx, t, "", "get", "pods", "--all-namespaces", "-o", "name"); !strings.Contains(got, "pod/app\n") {
			t.Errorf("the list of pods has no app: %q", got)
		}
		if got := alice.must(ctx, t, "", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"); got != v1alpha1.ServiceAccountUsername("alice@example.com") {
			t.Errorf("alice is %q in her cluster, want her ServiceAccount", got)
		}
	})

	t.Run("apply and delete", func(t *testing.T) {
		cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  level: %q\n"
		if out := alice.must(ctx, t, fmt.Sprintf(cm, "1"), "apply", "-f", "-"); !strings.Contains(out, "created") {
			t.Errorf("first apply: %q", out)
		}
		if out := alice.must(ctx, t, fmt.Sprintf(cm, "2"), "apply", "-f", "-"); !strings.Contains(out, "configured") {
			t.Errorf("second apply: %q", out)
		}
		if got := alice.must(ctx, t, "", "get", "configmap", "settings", "-o", "jsonpath={.data.level}"); got != "2" {
			t.Errorf("after apply the level is %q, want 2", got)
		}
		watch.expect(t, "configmap/settings", 30*time.Second)
		alice.must(ctx, t, "", "delete", "configmap", "settings", "--wait")
		if _, _, err := alice.run(ctx, nil, "", "get", "configmap", "settings"); err == nil || !strings.Contains(err.Error(), "NotFound") {
			t.Errorf("the deleted ConfigMap is still there: %v", err)
		}
	})

	t.Run("logs -f", func(t *testing.T) {
		logs := alice.start(ctx, t, nil, "logs", "-f", "app")
		logs.expect(t, "started", 30*time.Second)
		f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, criLogLine("a line written while following"))
		f.Close()
		logs.expect(t, "a line written while following", 30*time.Second)
	})

	t.Run("exec", func(t *testing.T) {
		for proto, extraEnv := range map[string][]string{"websocket": nil, "spdy": {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}} {
			// -v=4 shows whether kubectl fell back from WebSocket to SPDY.
			out, stderr, err := alice.run(ctx, extraEnv, "typed over "+proto+"\n", "-v=4", "exec", "-i", "app", "--", "sh", "-c", "cat greeting; head -n 1")
			if err != nil {
				t.Fatalf("exec over %s: %v", proto, err)
			}
			if want := "hello from the pod\ntyped over " + proto + "\n"; out != want {
				t.Errorf("exec over %s printed %q, want %q", proto, out, want)
			}
			if proto == "websocket" && strings.Contains(stderr, "fallback") {
				t.Errorf("exec over WebSocket fell back to SPDY: %s", stderr)
			}
		}
		if _, _, err := alice.run(ctx, nil, "", "exec", "app", "--", "sh", "-c", "exit 3"); err == nil || !strings.Contains(err.Error(), "exit status 3") {
			t.Errorf("the command's exit code did not come back: %v", err)
		}
	})

	// Idle until heldFor has passed, failing early if any held stream ends.
	select {
	case <-watch.done:
		t.Fatalf("the watch ended after %s: %s", time.Since(heldSince), watch.stderr())
	case <-forwards["websocket"].done:
		t.Fatalf("the WebSocket port-forward ended after %s: %s", time.Since(heldSince), forwards["websocket"].stderr())
	case <-forwards["spdy"].done:
		t.Fatalf("the SPDY port-forward ended after %s: %s", time.Since(heldSince), forwards["spdy"].stderr())
	case <-time.After(time.Until(heldSince.Add(heldFor))):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	t.Run("held for more than 70 s", func(t *testing.T) {
		alice.must(ctx, t, "", "create", "configmap", "late")
		watch.expect(t, "configmap/late", 30*time.Second)
		for proto, conn := range idle {
			echoes(t, conn, "still here over "+proto)
			fresh, err := net.Dial("tcp", "127.0.0.1:"+ports[proto])
			if err != nil {
				t.Fatal(err)
			}
			echoes(t, fresh, "a new connection over "+proto)
			fresh.Close()
		}
	})

	t.Run("audited as alice's ServiceAccount through the proxy", func(t *testing.T) {
		sa := v1alpha1.ServiceAccountUsername("alice@example.com")
		for _, sub := range []string{"/pods/app/exec", "/pods/app/portforward", "/pods/app/log", "/namespaces/default/configmaps?"} {
			var events []auditEvent
			for _, ev := range auditedURI(t, ns, "day", sub) {
				if sub != "/namespaces/default/configmaps?" || strings.Contains(ev.RequestURI, "watch=true") {
					events = append(events, ev)
				}
			}
			if len(events) == 0 {
				t.Errorf("no %s in the cluster's audit log", sub)
			}
			for _, ev := range events {
				if ev.User.Username != "ucs:proxy" || ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != sa ||
					strings.Join(ev.ImpersonatedUser.Extra["containerservice.ucloudstack.io/username"], ",") != "alice@example.com" {
					t.Errorf("%s was not alice's ServiceAccount through the proxy: %+v", ev.RequestURI, ev)
				}
			}
		}
	})
}
