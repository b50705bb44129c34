// Package stack runs a whole containerservice management plane on one machine: an etcd
// (TLS with client certificates), a kube-apiserver and a kube-controller-manager as the
// host, and containerservice-apiserver registered with the host's aggregator through an
// APIService, restarted when it dies. `make run` and the tests use it, so the tests
// exercise exactly what a user starts.
package stack

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"

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
