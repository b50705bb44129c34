package stack

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"

	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/artifacts"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
)

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
