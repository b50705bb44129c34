package stack

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
)

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
