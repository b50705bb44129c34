package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/provisioner/driver/local/kwok"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
)

// tenantKubectl runs the real kubectl as a tenant does: with the kubeconfig that GET
// clusters/{name}/kubeconfig returns, which logs in through the kubectl oidc-login
// credential plugin (our issuer's stand-in for kubelogin, built from this tree) with the
// person's credentials, and reaches the cluster through the host and our proxy.
type tenantKubectl struct {
	kubectl, kubeconfig string
	env                 []string
}

func newTenantKubectl(ctx context.Context, t *testing.T, ns, cluster, user, password string) *tenantKubectl {
	t.Helper()
	dir := env.TempDir(t)
	bin := filepath.Join(dir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "kubectl-oidc_login"), "./cmd/containerservice-oidc")
	build.Dir = env.Root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the oidc-login plugin: %v: %s", err, out)
	}
	kc, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).GetKubeconfig(ctx, cluster, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("GET clusters/%s/kubeconfig: %v", cluster, err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc.Kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tenantKubectl{
		kubectl:    filepath.Join(env.BinDir(), "kubectl"),
		kubeconfig: kubeconfig,
		// The kubeconfig's exec plugin is `kubectl oidc-login`: both on PATH. HOME keeps the
		// plugin's token cache inside the test.
		env: append(os.Environ(), "PATH="+bin+":"+env.BinDir()+":"+os.Getenv("PATH"), "HOME="+filepath.Join(dir, "home"),
			"CONTAINERSERVICE_USERNAME="+user, "CONTAINERSERVICE_PASSWORD="+password),
	}
}

func (k *tenantKubectl) command(ctx context.Context, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.kubectl, append([]string{"--kubeconfig=" + k.kubeconfig}, args...)...)
	cmd.Env = append(append([]string{}, k.env...), extraEnv...)
	return cmd
}

// run runs kubectl to the end and returns its standard output and error.
func (k *tenantKubectl) run(ctx context.Context, extraEnv []string, stdin string, args ...string) (string, string, error) {
	cmd := k.command(ctx, extraEnv, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %v: %w: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), stderr.String(), err
}

// must runs kubectl and fails the test when it fails.
func (k *tenantKubectl) must(ctx context.Context, t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, _, err := k.run(ctx, nil, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stream is a kubectl that keeps running (a watch, logs -f, a port-forward): its output
// lines arrive on lines, done closes when it exits.
type stream struct {
	name  string
	lines chan string
	done  chan struct{}
	mu    sync.Mutex
	err   bytes.Buffer
}

func (k *tenantKubectl) start(ctx context.Context, t *testing.T, extraEnv []string, args ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	cmd := k.command(ctx, extraEnv, args...)
	s := &stream{name: strings.Join(args, " "), lines: make(chan string, 100), done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.err.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			// Once the test is done with it, lines nobody reads are dropped, so that the
			// process is always waited for.
			select {
			case s.lines <- scanner.Text():
			case <-ctx.Done():
			}
		}
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// expect waits for an output line containing want and returns it.
func (s *stream) expect(t *testing.T, want string, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case line := <-s.lines:
			if strings.Contains(line, want) {
				return line
			}
		case <-s.done:
			t.Fatalf("kubectl %s exited before printing %q: %s", s.name, want, s.stderr())
		case <-deadline:
			t.Fatalf("kubectl %s printed no %q within %s: %s", s.name, want, within, s.stderr())
		}
	}
}

func (s *stream) stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err.String()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// kwokWorkload is kwok configuration for what the test's pods "run": exec runs the command
// on this machine in a working directory, logs follow a file, and the pods' port 8080
// forwards to a TCP server of the test.
const kwokWorkload = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: local
spec:
  execs:
  - local:
      workDir: %q
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: file
spec:
  logs:
  - logsFile: %q
    follow: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata:
  name: echo
spec:
  forwards:
  - ports: [8080]
    target:
      address: 127.0.0.1
      port: %d
`

// startKwok runs kwok for a user cluster with the cluster's break-glass credential: it
// keeps every node Ready (as localhost, so the user kube-apiserver reaches its kubelet API
// on this machine), their pods Running, and serves exec, logs and port-forward as
// workload (kwok configuration) says. It stops when the test ends.
func startKwok(ctx context.Context, t *testing.T, ns, cluster, dir, workload string) {
	t.Helper()
	kubeconfig, _ := adminKubeconfig(ctx, t, env.CS, ns, cluster, 3600)
	// The user kube-apiserver trusts kubelets whose serving certificate comes from the
	// cluster CA (--kubelet-certificate-authority), as the driver's own node agent has.
	ca, err := pki.LoadOrCreateCA(filepath.Join(env.ClusterDir(ns, cluster), "pki"), "ca")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.IssueFiles(dir, "kwok-serving", pki.Request{CommonName: "localhost", DNSNames: []string{"localhost"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "kwok.yaml")
	if err := os.WriteFile(config, append(append(kwok.Stages, "\n---\n"...), workload...), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(p)
	log, err := os.Create(filepath.Join(dir, "kwok.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(env.BinDir(), "kwok"), "--config="+config, "--kubeconfig="+kubeconfig,
		"--manage-all-nodes", "--node-ip=127.0.0.1", "--node-name=localhost", "--node-port="+port,
		"--server-address=127.0.0.1:"+port, "--tls-cert-file="+serving.CertFile, "--tls-private-key-file="+serving.KeyFile)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kwok: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		log.Close()
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	eventually(ctx, t, "kwok serves", func() (bool, error) {
		select {
		case <-exited:
			data, _ := os.ReadFile(log.Name())
			t.Fatalf("kwok exited: %s", data)
		default:
		}
		resp, err := client.Get("https://127.0.0.1:" + port + "/healthz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("healthz answered %d", resp.StatusCode)
	})
}

// echoServer answers every line sent to it with the same line; it returns its port.
func echoServer(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// echoes sends a line over conn and checks that it comes back.
func echoes(t *testing.T, conn net.Conn, line string) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintln(conn, line); err != nil {
		t.Fatalf("send %q: %v", line, err)
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || strings.TrimSpace(got) != line {
		t.Fatalf("sent %q, got %q (%v)", line, got, err)
	}
}
