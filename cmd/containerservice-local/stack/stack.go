// Package stack runs a whole containerservice management plane on one machine: an etcd
// (TLS with client certificates), a kube-apiserver and a kube-controller-manager as the
// host, and containerservice-apiserver registered with the host's aggregator through an
// APIService, restarted when it dies. `make run` and the tests use it, so the tests
// exercise exactly what a user starts.
package stack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ucloudstack/containerservice/artifacts"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/driver/local"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/issuer"
)

// Names the aggregator uses to reach the server; the serving certificate must carry the
// service's DNS name, which the aggregator checks.
const (
	ServerNamespace = "containerservice-system"
	ServerService   = "containerservice-apiserver"
	serverUser      = "system:serviceaccount:" + ServerNamespace + ":" + ServerService
	apiServiceName  = "v1alpha1." + v1alpha1.GroupName
)

// startTimeout bounds each component's start; a cold kube-apiserver on two cores takes
// about ten seconds.
const startTimeout = 2 * time.Minute

// Config says where the stack finds its binaries and keeps its state.
type Config struct {
	// BinDir holds etcd, kube-apiserver and kubectl, as hack/kube-binaries.sh builds them.
	BinDir string
	// ServerBinary is the containerservice-apiserver binary.
	ServerBinary string
	// StateDir keeps certificates, data and logs; a later start on the same directory
	// finds every object again.
	StateDir string
	// ServerArgs are extra flags for containerservice-apiserver.
	ServerArgs []string
	// ServerOnHostEtcd stores the server's objects in the host's etcd instead of the
	// embedded one, so that both API servers share one storage (as benchmarks need).
	ServerOnHostEtcd bool
	// Users, when set, are the people of a local OIDC issuer the stack runs; the host
	// kube-apiserver and containerservice-apiserver then trust its ID tokens.
	Users *issuer.Users
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// Stack is a running management plane.
type Stack struct {
	cfg                   Config
	pkiDir, logDir        string
	ca, frontProxy, serve *pki.Authority
	ports                 map[string]int

	hostEtcd, hostAPI *supervisor.Process
	issuer            *issuer.Issuer
	// hostKCM is supervised: quota usage and namespace deletion depend on it.
	hostKCM *supervisor.Supervised
	// server is supervised: a server that dies is started again, and adopts the user
	// control planes that kept running.
	server *supervisor.Supervised

	// Kubeconfig is the path of the host administrator's kubeconfig.
	Kubeconfig string
	// AdminConfig is the host administrator's client configuration (system:masters).
	AdminConfig                     *rest.Config
	serverKubeconfig, kcmKubeconfig string
	serving                         pki.KeyPair
}

// Start brings the whole stack up and returns once the API is served through the
// aggregator. On error, whatever was started is stopped again.
func Start(ctx context.Context, cfg Config) (s *Stack, err error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	s = &Stack{cfg: cfg, pkiDir: filepath.Join(cfg.StateDir, "pki"), logDir: filepath.Join(cfg.StateDir, "logs")}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	for _, dir := range []string{cfg.StateDir, s.pkiDir, s.logDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := s.loadPorts(); err != nil {
		return nil, err
	}
	if err := s.writePKI(); err != nil {
		return nil, err
	}
	if err := s.startIssuer(); err != nil {
		return nil, err
	}
	if err := s.startHost(ctx); err != nil {
		return nil, err
	}
	if err := s.applyRBAC(ctx); err != nil {
		return nil, err
	}
	if err := s.StartServer(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Stop stops every component: the server first (the user control planes outlive it, as
// in production), then the user control planes, then the host. The state directory is
// kept, and the next start brings everything back.
func (s *Stack) Stop() {
	s.StopServer()
	s.StopUserClusters()
	if s.hostKCM != nil {
		s.hostKCM.Stop()
	}
	s.hostAPI.Stop()
	s.hostEtcd.Stop()
	if s.issuer != nil {
		s.issuer.Stop()
	}
}

// StopServer stops containerservice-apiserver alone, as an operator restarting it would;
// user control planes keep running.
func (s *Stack) StopServer() {
	if s.server != nil {
		s.server.Stop()
		s.server = nil
	}
}

// StopUserClusters stops every user control plane the server's local driver recorded, as
// a reboot of the machine would (the server must be stopped first).
func (s *Stack) StopUserClusters() {
	local.StopControlPlanes(s.ServerDataDir())
}

// ServerPid is the pid of the running containerservice-apiserver, or 0.
func (s *Stack) ServerPid() int {
	if s.server == nil {
		return 0
	}
	return s.server.Pid()
}

// BinDir is the directory of the kube binaries the stack runs.
func (s *Stack) BinDir() string { return s.cfg.BinDir }

// HostEtcdURL is the client URL of the host's etcd; it takes only client certificates of
// the stack's etcd CA.
func (s *Stack) HostEtcdURL() string {
	return "https://127.0.0.1:" + strconv.Itoa(s.ports["host-etcd-client"])
}

// HostEtcdFlags are the flags that make containerservice-apiserver store its objects in
// the host's etcd instead of its embedded one.
func (s *Stack) HostEtcdFlags() []string { return s.etcdClientFlags("containerservice-etcd-client") }

// etcdClientFlags are the flags that let an API server use the host's etcd.
func (s *Stack) etcdClientFlags(client string) []string {
	p := func(name string) string { return filepath.Join(s.pkiDir, name) }
	return []string{"--etcd-servers=" + s.HostEtcdURL(), "--etcd-cafile=" + p("etcd-ca.crt"),
		"--etcd-certfile=" + p(client+".crt"), "--etcd-keyfile=" + p(client+".key")}
}

// ServerURL is where containerservice-apiserver serves directly, bypassing the aggregator.
func (s *Stack) ServerURL() string {
	return "https://127.0.0.1:" + strconv.Itoa(s.ports["containerservice-apiserver"])
}

// DirectConfig is the administrator's client configuration aimed at the server itself,
// trusting its serving CA, for the endpoints the aggregator does not proxy (/metrics, /livez).
func (s *Stack) DirectConfig() (*rest.Config, error) {
	caPEM, err := os.ReadFile(s.serve.CertFile)
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(s.AdminConfig)
	cfg.Host = s.ServerURL()
	cfg.CAData, cfg.CAFile = caPEM, ""
	return cfg, nil
}

// ServerDataDir is containerservice-apiserver's --data-dir: its embedded etcd and, with
// the local driver, one directory per user cluster under clusters/.
func (s *Stack) ServerDataDir() string { return filepath.Join(s.cfg.StateDir, "containerservice") }

// ServerLog is the path of containerservice-apiserver's log.
func (s *Stack) ServerLog() string { return filepath.Join(s.logDir, "containerservice-apiserver.log") }

func (s *Stack) progress(format string, args ...any) {
	fmt.Fprintf(s.cfg.Progress, format+"\n", args...)
}

// loadPorts reuses the ports of an earlier start when they are still free, so kubeconfigs
// and the etcd member's URLs stay valid, and picks free ones otherwise.
func (s *Stack) loadPorts() error {
	file := filepath.Join(s.cfg.StateDir, "ports.json")
	s.ports = map[string]int{}
	if data, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(data, &s.ports)
	}
	for _, name := range []string{"host-etcd-client", "host-etcd-peer", "host-apiserver", "containerservice-apiserver", "oidc-issuer"} {
		if p, ok := s.ports[name]; ok && portFree(p) {
			continue
		}
		p, err := freePort()
		if err != nil {
			return fmt.Errorf("find a free port for %s: %w", name, err)
		}
		s.ports[name] = p
	}
	data, _ := json.Marshal(s.ports)
	return os.WriteFile(file, data, 0o600)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// writePKI creates (or reuses) the three CAs and issues the stack's certificates.
func (s *Stack) writePKI() error {
	var err error
	if s.ca, err = pki.LoadOrCreateCA(s.pkiDir, "ca"); err != nil {
		return err
	}
	if s.frontProxy, err = pki.LoadOrCreateCA(s.pkiDir, "front-proxy-ca"); err != nil {
		return err
	}
	if s.serve, err = pki.LoadOrCreateCA(s.pkiDir, "containerservice-ca"); err != nil {
		return err
	}
	etcdCA, err := pki.LoadOrCreateCA(s.pkiDir, "etcd-ca")
	if err != nil {
		return err
	}
	loopbackIPs := []net.IP{net.ParseIP("127.0.0.1")}
	for name, req := range map[string]pki.Request{
		"etcd-server":                  {CommonName: "host-etcd", Server: true, Client: true, DNSNames: []string{"localhost"}, IPs: loopbackIPs},
		"host-apiserver-etcd-client":   {CommonName: "host-kube-apiserver", Client: true},
		"containerservice-etcd-client": {CommonName: "containerservice-apiserver", Client: true},
	} {
		if _, err := etcdCA.IssueFiles(s.pkiDir, name, req); err != nil {
			return err
		}
	}
	if _, err := pki.WriteServiceAccountKey(s.pkiDir); err != nil {
		return fmt.Errorf("write service account key: %w", err)
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	if _, err := s.ca.IssueFiles(s.pkiDir, "host-apiserver", pki.Request{CommonName: "kube-apiserver", Server: true,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPs:      append(loopback, net.ParseIP("10.0.0.1"))}); err != nil {
		return err
	}
	if _, err := s.frontProxy.IssueFiles(s.pkiDir, "front-proxy-client", pki.Request{CommonName: "front-proxy-client", Client: true}); err != nil {
		return err
	}
	if s.serving, err = s.serve.IssueFiles(s.pkiDir, "containerservice-serving", pki.Request{CommonName: ServerService, Server: true,
		DNSNames: []string{ServerService + "." + ServerNamespace + ".svc", "localhost"}, IPs: loopback}); err != nil {
		return err
	}
	hostURL := "https://127.0.0.1:" + strconv.Itoa(s.ports["host-apiserver"])
	if s.Kubeconfig, s.AdminConfig, err = s.writeKubeconfig("kubeconfig", hostURL, "admin", []string{"system:masters"}); err != nil {
		return err
	}
	// The local stack runs no pods, so the server presents a certificate carrying its
	// ServiceAccount's username: the RBAC of artifacts/rbac then applies to it unchanged.
	if s.serverKubeconfig, _, err = s.writeKubeconfig("containerservice-apiserver.kubeconfig", hostURL, serverUser, []string{"system:serviceaccounts"}); err != nil {
		return err
	}
	// kube-controller-manager's own identity; its controllers use their ServiceAccounts.
	s.kcmKubeconfig, _, err = s.writeKubeconfig("kube-controller-manager.kubeconfig", hostURL, "system:kube-controller-manager", nil)
	return err
}

// writeKubeconfig issues a client certificate and writes a self-contained kubeconfig.
func (s *Stack) writeKubeconfig(file, server, user string, groups []string) (string, *rest.Config, error) {
	certPEM, keyPEM, err := s.ca.Issue(pki.Request{CommonName: user, Organizations: groups, Client: true})
	if err != nil {
		return "", nil, fmt.Errorf("issue client certificate for %s: %w", user, err)
	}
	data, err := pki.Kubeconfig(server, s.ca.CertPEM(), certPEM, keyPEM, user)
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(s.cfg.StateDir, file)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", nil, fmt.Errorf("write %s: %w", path, err)
	}
	restCfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	return path, restCfg, err
}

// UserConfig returns a client configuration for a host user authenticated by a client
// certificate from the host CA, as a tenant's identity would be.
func (s *Stack) UserConfig(user string, groups ...string) (*rest.Config, error) {
	certPEM, keyPEM, err := s.ca.Issue(pki.Request{CommonName: user, Organizations: groups, Client: true})
	if err != nil {
		return nil, err
	}
	cfg := rest.AnonymousClientConfig(s.AdminConfig)
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	return cfg, nil
}

// startHost starts the host's etcd, kube-apiserver and kube-controller-manager and waits
// until the apiserver is ready.
func (s *Stack) startHost(ctx context.Context) error {
	client, peer := s.HostEtcdURL(), "https://127.0.0.1:"+strconv.Itoa(s.ports["host-etcd-peer"])
	p := func(name string) string { return filepath.Join(s.pkiDir, name) }
	var err error
	s.progress("starting etcd (host) on %s", client)
	s.hostEtcd, err = supervisor.Start(supervisor.Command{Name: "host-etcd", Binary: filepath.Join(s.cfg.BinDir, "etcd"), LogDir: s.logDir, Args: []string{
		"--name=host",
		"--data-dir=" + filepath.Join(s.cfg.StateDir, "host-etcd"),
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=host=" + peer,
		// Only certificates of the stack's etcd CA get in, clients and peers alike.
		"--cert-file=" + p("etcd-server.crt"), "--key-file=" + p("etcd-server.key"),
		"--trusted-ca-file=" + p("etcd-ca.crt"), "--client-cert-auth=true",
		"--peer-cert-file=" + p("etcd-server.crt"), "--peer-key-file=" + p("etcd-server.key"),
		"--peer-trusted-ca-file=" + p("etcd-ca.crt"), "--peer-client-cert-auth=true",
		"--log-level=warn",
	}})
	if err != nil {
		return err
	}

	port := s.ports["host-apiserver"]
	s.progress("starting kube-apiserver (host) on https://127.0.0.1:%d", port)
	hostArgs := append(s.etcdClientFlags("host-apiserver-etcd-client"),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--tls-cert-file="+p("host-apiserver.crt"), "--tls-private-key-file="+p("host-apiserver.key"),
		"--client-ca-file="+p("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+p("sa.pub"), "--service-account-signing-key-file="+p("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--requestheader-client-ca-file="+p("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+p("front-proxy-client.crt"), "--proxy-client-key-file="+p("front-proxy-client.key"),
		"--enable-aggregator-routing=false",
		// The host runs on loopback, which the endpoints of the kubernetes Service may not name.
		"--endpoint-reconciler-type=none",
		"--cert-dir="+filepath.Join(s.cfg.StateDir, "host-apiserver"),
		"--profiling=false",
	)
	if s.issuer != nil {
		// The host trusts the local issuer's ID tokens (structured authentication).
		hostArgs = append(hostArgs, "--authentication-config="+s.hostAuthnConfig())
	}
	s.hostAPI, err = supervisor.Start(supervisor.Command{Name: "host-kube-apiserver", Binary: filepath.Join(s.cfg.BinDir, "kube-apiserver"), LogDir: s.logDir, Args: hostArgs})
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(s.AdminConfig)
	if err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := s.hostAPI.WaitFor(waitCtx, "wait for /readyz", func(ctx context.Context) error {
		if s.hostEtcd.Exited() {
			return s.hostEtcd.Failure()
		}
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return err
	}

	// As in a real management plane: deleting a tenant namespace deletes what is in it
	// (clusters included), garbage collection runs, and quota usage is counted.
	s.progress("starting kube-controller-manager (host)")
	s.hostKCM = supervisor.Supervise(supervisor.Component{Name: "host-kube-controller-manager", Binary: filepath.Join(s.cfg.BinDir, "kube-controller-manager"), LogDir: s.logDir, Args: []string{
		"--kubeconfig=" + s.kcmKubeconfig,
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + p("sa.key"),
		"--root-ca-file=" + p("ca.crt"),
		"--secure-port=0",
		"--leader-elect=false",
		"--profiling=false",
	}})
	return nil
}

// applyRBAC applies artifacts/rbac with the real kubectl, as a platform admin would.
func (s *Stack) applyRBAC(ctx context.Context) error {
	s.progress("applying artifacts/rbac")
	files, err := fs.Glob(artifacts.RBAC, "rbac/*.yaml")
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := artifacts.RBAC.ReadFile(f)
		if err != nil {
			return err
		}
		if _, err := s.Kubectl(ctx, data, "apply", "-f", "-"); err != nil {
			return fmt.Errorf("apply artifacts/%s: %w", f, err)
		}
	}
	return nil
}

// StartServer starts containerservice-apiserver, registers it with the aggregator and
// returns once its API is discoverable through the host. extraArgs come last, so they
// override the stack's own flags (as a test breaking --kube-bin-dir needs).
func (s *Stack) StartServer(ctx context.Context, extraArgs ...string) error {
	// Never two servers: they would fight over the data directory.
	s.StopServer()
	port := s.ports["containerservice-apiserver"]
	if !portFree(port) {
		p, err := freePort()
		if err != nil {
			return err
		}
		port, s.ports["containerservice-apiserver"] = p, p
	}
	s.progress("starting containerservice-apiserver on https://127.0.0.1:%d (embedded etcd under %s)", port, s.ServerDataDir())
	args := append([]string{
		"--secure-port=" + strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--tls-cert-file=" + s.serving.CertFile, "--tls-private-key-file=" + s.serving.KeyFile,
		"--kubeconfig=" + s.serverKubeconfig,
		"--authentication-kubeconfig=" + s.serverKubeconfig,
		"--authorization-kubeconfig=" + s.serverKubeconfig,
		"--data-dir=" + s.ServerDataDir(),
		"--kube-bin-dir=" + s.cfg.BinDir,
		"--public-url=https://127.0.0.1:" + strconv.Itoa(s.ports["host-apiserver"]),
		"--public-ca-file=" + s.ca.CertFile,
	}, s.cfg.ServerArgs...)
	if s.issuer != nil {
		args = append(args, "--authentication-config="+s.serverAuthnConfig(), "--oidc-issuer-url="+s.issuer.URL(),
			"--oidc-client-id="+issuer.ClientID, "--oidc-ca-file="+s.ca.CertFile)
	}
	if s.cfg.ServerOnHostEtcd {
		args = append(args, s.etcdClientFlags("containerservice-etcd-client")...)
	}
	args = append(args, extraArgs...)
	s.server = supervisor.Supervise(supervisor.Component{Name: "containerservice-apiserver", Binary: s.cfg.ServerBinary, Args: args, LogDir: s.logDir})
	if err := s.register(ctx, port); err != nil {
		return err
	}
	return s.WaitForServer(ctx)
}

// WaitForServer returns once the server's API is discoverable through the host's
// aggregator (after a start, or a restart by the supervisor).
func (s *Stack) WaitForServer(ctx context.Context) error {
	dc, err := discovery.NewDiscoveryClientForConfig(s.AdminConfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		list, err := dc.ServerResourcesForGroupVersion(v1alpha1.SchemeGroupVersion.String())
		if err == nil && len(list.APIResources) > 0 && s.ServerPid() != 0 {
			return nil
		}
		if err == nil {
			err = errors.New("no resources discovered yet")
		}
		select {
		case <-ctx.Done():
			tail, _ := os.ReadFile(s.ServerLog())
			if len(tail) > 4096 {
				tail = tail[len(tail)-4096:]
			}
			return fmt.Errorf("containerservice-apiserver not served through the aggregator: %w (last: %v); end of %s:\n%s", ctx.Err(), err, s.ServerLog(), tail)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// register points the aggregator at the server: an ExternalName Service naming loopback
// (the aggregator connects to <externalName>:<APIService port>) and the APIService with
// the CA of the server's serving certificate.
func (s *Stack) register(ctx context.Context, port int) error {
	caPEM, err := os.ReadFile(s.serve.CertFile)
	if err != nil {
		return err
	}
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec: {type: ExternalName, externalName: localhost}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: %[3]s}
spec:
  group: %[4]s
  version: %[5]s
  groupPriorityMinimum: 1000
  versionPriority: 15
  service: {name: %[1]s, namespace: %[2]s, port: %[6]d}
  caBundle: %[7]s
`, ServerService, ServerNamespace, apiServiceName, v1alpha1.GroupName, v1alpha1.SchemeGroupVersion.Version, port,
		base64.StdEncoding.EncodeToString(caPEM))
	if _, err := s.Kubectl(ctx, []byte(manifest), "apply", "-f", "-"); err != nil {
		return fmt.Errorf("register the APIService: %w", err)
	}
	return nil
}

// Kubectl runs the real kubectl as the host administrator and returns its standard output.
func (s *Stack) Kubectl(ctx context.Context, stdin []byte, args ...string) (string, error) {
	return s.KubectlAs(ctx, s.Kubeconfig, stdin, args...)
}

// KubectlAs runs the real kubectl with the given kubeconfig.
func (s *Stack) KubectlAs(ctx context.Context, kubeconfig string, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.cfg.BinDir, "kubectl"), append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %v: %w: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}
