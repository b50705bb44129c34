package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ucloudstack/containerservice/pkg/provisioner/identity"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
)

// Port names of a cluster's components.
const (
	portEtcdClient = "etcd-client"
	portEtcdPeer   = "etcd-peer"
	portAPIServer  = "apiserver"
	portKCM        = "controller-manager"
	portScheduler  = "scheduler"
)

var portNames = []string{portEtcdClient, portEtcdPeer, portAPIServer, portKCM, portScheduler}

// layout is a cluster's directory: its PKI, etcd data, kubeconfigs and logs, all private
// to the server's user.
type layout struct {
	dir string
}

func (l layout) pki(name string) string        { return filepath.Join(l.dir, "pki", name) }
func (l layout) etcdData() string              { return filepath.Join(l.dir, "etcd") }
func (l layout) logs() string                  { return filepath.Join(l.dir, "logs") }
func (l layout) kubeconfig(name string) string { return filepath.Join(l.dir, name+".kubeconfig") }
func (l layout) portsFile() string             { return filepath.Join(l.dir, "ports.json") }

func (l layout) create() error {
	for _, d := range []string{l.dir, filepath.Join(l.dir, "pki"), l.logs()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// portAllocator hands out loopback ports that no cluster holds, remembering every
// cluster's ports in its ports.json so that they survive restarts of the server.
type portAllocator struct {
	taken map[int]bool
}

// ports returns the cluster's ports, allocating those it has not got yet.
func (a *portAllocator) ports(l layout) (map[string]int, error) {
	ports := map[string]int{}
	if data, err := os.ReadFile(l.portsFile()); err == nil {
		if err := json.Unmarshal(data, &ports); err != nil {
			return nil, fmt.Errorf("read %s: %w", l.portsFile(), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	changed := false
	for _, name := range portNames {
		if p, ok := ports[name]; ok {
			a.taken[p] = true
			continue
		}
		p, err := a.free()
		if err != nil {
			return nil, fmt.Errorf("allocate the %s port: %w", name, err)
		}
		ports[name], changed = p, true
	}
	if changed {
		data, _ := json.Marshal(ports)
		if err := os.WriteFile(l.portsFile(), data, 0o600); err != nil {
			return nil, err
		}
	}
	return ports, nil
}

// free finds a loopback port that is free now and not held by any cluster.
func (a *portAllocator) free() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !a.taken[p] {
			a.taken[p] = true
			return p, nil
		}
	}
	return 0, errors.New("no free port found")
}

func (a *portAllocator) release(ports map[string]int) {
	for _, p := range ports {
		delete(a.taken, p)
	}
}

// certs are a cluster's authorities: the cluster CA signs serving certificates, the
// client CA every client certificate the kube-apiserver accepts (and is what rotation
// replaces), the etcd CA everything etcd trusts, the front-proxy CA the aggregator's.
type certs struct {
	ca, client, etcd, frontProxy *pki.Authority
}

func loadCerts(l layout) (*certs, error) {
	var c certs
	var err error
	dir := filepath.Join(l.dir, "pki")
	for _, ca := range []struct {
		name string
		into **pki.Authority
	}{{"ca", &c.ca}, {"client-ca", &c.client}, {"etcd-ca", &c.etcd}, {"front-proxy-ca", &c.frontProxy}} {
		if *ca.into, err = pki.LoadOrCreateCA(dir, ca.name); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// writeLeafCerts issues the certificates of the components and the kubeconfigs of
// KCM, the scheduler and the driver itself. Re-issuing is cheap and keeps them signed by
// the current CAs, so it runs on every start of a control plane.
func writeLeafCerts(l layout, c *certs, ports map[string]int) error {
	dir := filepath.Join(l.dir, "pki")
	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	issue := []struct {
		ca   *pki.Authority
		name string
		req  pki.Request
	}{
		{c.etcd, "etcd-server", pki.Request{CommonName: "etcd", Server: true, Client: true, DNSNames: []string{"localhost"}, IPs: loopback}},
		{c.etcd, "etcd-peer", pki.Request{CommonName: "etcd-peer", Server: true, Client: true, DNSNames: []string{"localhost"}, IPs: loopback}},
		{c.etcd, "apiserver-etcd-client", pki.Request{CommonName: "kube-apiserver-etcd-client", Client: true}},
		{c.ca, "apiserver", pki.Request{CommonName: "kube-apiserver", Server: true, IPs: loopback,
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}}},
		{c.ca, "controller-manager-serving", pki.Request{CommonName: "kube-controller-manager", Server: true, DNSNames: []string{"localhost"}, IPs: loopback}},
		{c.ca, "scheduler-serving", pki.Request{CommonName: "kube-scheduler", Server: true, DNSNames: []string{"localhost"}, IPs: loopback}},
		{c.client, "apiserver-kubelet-client", pki.Request{CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"system:masters"}, Client: true}},
		{c.frontProxy, "front-proxy-client", pki.Request{CommonName: "front-proxy-client", Client: true}},
	}
	for _, i := range issue {
		if _, err := i.ca.IssueFiles(dir, i.name, i.req); err != nil {
			return err
		}
	}
	if _, err := pki.WriteServiceAccountKey(dir); err != nil {
		return err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(ports[portAPIServer])
	for _, kc := range []struct{ file, user, group string }{
		{"controller-manager", "system:kube-controller-manager", ""},
		{"scheduler", "system:kube-scheduler", ""},
		// The driver's own identity, for bootstrap and health checks.
		{"driver", "containerservice:driver", "system:masters"},
		// The tenant proxy's identity: it may only impersonate ServiceAccounts of ucs-users.
		{"proxy", identity.ProxyUser, ""},
	} {
		var groups []string
		if kc.group != "" {
			groups = []string{kc.group}
		}
		data, err := kubeconfig(c, server, kc.user, groups, pki.DefaultTTL)
		if err != nil {
			return err
		}
		if err := os.WriteFile(l.kubeconfig(kc.file), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// kubeconfig issues a client certificate from the client CA and returns a self-contained
// kubeconfig for it.
func kubeconfig(c *certs, server, user string, groups []string, ttl time.Duration) ([]byte, error) {
	certPEM, keyPEM, err := c.client.Issue(pki.Request{CommonName: user, Organizations: groups, Client: true, TTL: ttl})
	if err != nil {
		return nil, fmt.Errorf("issue a certificate for %s: %w", user, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.ca.CertPEM()}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	kc.Contexts["cluster"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: user}
	kc.CurrentContext = "cluster"
	return clientcmd.Write(*kc)
}

func restConfig(file string) (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", file)
}
