package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
)

// Port names of a cluster's components. portAPIServer is the cluster's published port,
// which its front owns; kube-apiservers listen on the slots' ports, on loopback.
const (
	portEtcdClient = "etcd-client"
	portEtcdPeer   = "etcd-peer"
	portAPIServer  = "apiserver"
	portKCM        = "controller-manager"
	portScheduler  = "scheduler"
	portNodeAgent  = "node-agent"
)

// slotPorts are the ports of the kube-apiserver slots: one serves, the other is where a
// replacement starts during a surge. Clusters made before the front get them at their
// next start (ports allocates the names a ports.json lacks).
var slotPorts = [slots]string{"apiserver-0", "apiserver-1"}

var portNames = []string{portEtcdClient, portEtcdPeer, portAPIServer, portKCM, portScheduler, portNodeAgent, slotPorts[0], slotPorts[1]}

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
func (l layout) uidFile() string               { return filepath.Join(l.dir, "uid") }
func (l layout) auditPolicy() string           { return filepath.Join(l.dir, "audit-policy.yaml") }
func (l layout) nodeAgentConfig() string       { return filepath.Join(l.dir, "kwok.yaml") }
func (l layout) rotationFile() string          { return filepath.Join(l.dir, "pki", "rotation") }
func (l layout) leavesFile() string            { return filepath.Join(l.dir, "pki", "leaves.json") }
func (l layout) frontConfig() string           { return filepath.Join(l.dir, "front.json") }
func (l layout) frontStatus() string           { return filepath.Join(l.dir, "run", "front-status.json") }

// volumes holds the csi add-on's volumes, one directory each: inside the cluster's
// directory, so that they move with it into the quarantine and back, and go with it.
func (l layout) volumes() string { return filepath.Join(l.dir, "volumes") }

// record is where the process of a component is recorded, for adoption after a restart.
func (l layout) record(component string) string {
	return filepath.Join(l.dir, "run", component+".json")
}

// uid returns the UID of the Cluster the directory was made for, "" when the directory
// has no uid file, and an error when the file cannot be read: an unreadable owner is
// never taken for no owner.
func (l layout) uid() (string, error) {
	data, err := os.ReadFile(l.uidFile())
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the owner of %s: %w", l.dir, err)
	}
	return strings.TrimSpace(string(data)), nil
}

func (l layout) create() error {
	for _, d := range []string{l.dir, filepath.Join(l.dir, "pki"), l.logs(), filepath.Join(l.dir, "run")} {
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

// readPorts returns the ports recorded in the cluster's directory (none if it has none).
func readPorts(l layout) (map[string]int, error) {
	ports := map[string]int{}
	data, err := os.ReadFile(l.portsFile())
	if errors.Is(err, os.ErrNotExist) {
		return ports, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &ports); err != nil {
		return nil, fmt.Errorf("%s is corrupt (%v): restore it, or remove it to give the cluster new ports", l.portsFile(), err)
	}
	return ports, nil
}

// ports returns the cluster's ports, allocating those it has not got yet.
func (a *portAllocator) ports(l layout) (map[string]int, error) {
	ports, err := readPorts(l)
	if err != nil {
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
		if err := atomicfile.WriteFile(l.portsFile(), data, 0o600); err != nil {
			return nil, err
		}
	}
	return ports, nil
}

// Clusters' ports come from below Linux's ephemeral range (32768–60999), so that the
// source port of some outgoing connection never holds a cluster's port while its
// component is down.
const (
	portRangeFirst = 20000
	portRangeSize  = 12000
)

// free finds a loopback port in the range that is free now and not held by any cluster.
func (a *portAllocator) free() (int, error) {
	start := rand.IntN(portRangeSize)
	for i := range portRangeSize {
		p := portRangeFirst + (start+i)%portRangeSize
		if a.taken[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		a.taken[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port between %d and %d", portRangeFirst, portRangeFirst+portRangeSize-1)
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

// leaves records what the components' certificates were issued for, so that they are
// issued again only when something changed: a CA (rotation), the external host or port,
// or their approaching end. Re-issuing on every start would hand running, adopted
// components new files for nothing.
type leaves struct {
	CAs          map[string]string `json:"cas"`
	ExternalHost string            `json:"externalHost"`
	Port         int               `json:"apiserverPort"`
	NotAfter     time.Time         `json:"notAfter"`
}

func (c *certs) fingerprints() map[string]string {
	return map[string]string{"ca": c.ca.Fingerprint(), "client-ca": c.client.Fingerprint(), "etcd-ca": c.etcd.Fingerprint(), "front-proxy-ca": c.frontProxy.Fingerprint()}
}

func wantLeaves(c *certs, ports map[string]int, externalHost string) leaves {
	return leaves{CAs: c.fingerprints(), ExternalHost: externalHost, Port: ports[portAPIServer]}
}

// leavesCurrent reports whether the issued certificates match the CAs, host and port and
// have more than renewBefore left. A record that cannot be read is an error, not a reason
// to issue everything again.
func leavesCurrent(l layout, want leaves) (bool, error) {
	data, err := os.ReadFile(l.leavesFile())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var have leaves
	if json.Unmarshal(data, &have) != nil {
		return false, nil // a corrupt record: the certificates are issued again
	}
	for _, name := range leafNames {
		if _, err := os.Stat(l.pki(name + ".crt")); errors.Is(err, os.ErrNotExist) {
			return false, nil // issued by an earlier version that had no such certificate
		}
	}
	return maps.Equal(have.CAs, want.CAs) && have.ExternalHost == want.ExternalHost && have.Port == want.Port &&
		time.Until(have.NotAfter) > renewBefore, nil
}

// leafNames are the certificates writeLeafCerts issues (each as .crt and .key).
var leafNames = []string{"etcd-server", "etcd-peer", "apiserver-etcd-client", "apiserver", "controller-manager-serving",
	"scheduler-serving", "apiserver-kubelet-client", "front-proxy-client", "node-agent-serving"}

// writeLeafCerts issues the certificates of the components (kube-apiserver's valid for
// externalHost too) and the kubeconfigs of kube-controller-manager and kube-scheduler,
// then records what they were issued for.
func writeLeafCerts(l layout, c *certs, ports map[string]int, externalHost string) error {
	dir := filepath.Join(l.dir, "pki")
	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	apiIPs, apiNames := loopback, []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if ip := net.ParseIP(externalHost); ip != nil {
		apiIPs = append(apiIPs, ip)
	} else {
		apiNames = append(apiNames, externalHost)
	}
	issue := []struct {
		ca  *pki.Authority
		req pki.Request
	}{
		{c.etcd, pki.Request{CommonName: "etcd", Server: true, Client: true, DNSNames: []string{"localhost"}, IPs: loopback}},
		{c.etcd, pki.Request{CommonName: "etcd-peer", Server: true, Client: true, DNSNames: []string{"localhost"}, IPs: loopback}},
		{c.etcd, pki.Request{CommonName: "kube-apiserver-etcd-client", Client: true}},
		{c.ca, pki.Request{CommonName: "kube-apiserver", Server: true, IPs: apiIPs, DNSNames: apiNames}},
		{c.ca, pki.Request{CommonName: "kube-controller-manager", Server: true, DNSNames: []string{"localhost"}, IPs: loopback}},
		{c.ca, pki.Request{CommonName: "kube-scheduler", Server: true, DNSNames: []string{"localhost"}, IPs: loopback}},
		{c.client, pki.Request{CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"system:masters"}, Client: true}},
		{c.frontProxy, pki.Request{CommonName: "front-proxy-client", Client: true}},
		{c.ca, pki.Request{CommonName: "kwok", Server: true, DNSNames: []string{"localhost"}, IPs: loopback}},
	}
	for i, leaf := range issue {
		if _, err := leaf.ca.IssueFiles(dir, leafNames[i], leaf.req); err != nil {
			return err
		}
	}
	if _, err := pki.WriteServiceAccountKey(dir); err != nil {
		return err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(ports[portAPIServer])
	for file, user := range map[string]string{"controller-manager": "system:kube-controller-manager", "scheduler": "system:kube-scheduler",
		"node-agent": v1alpha1.NodeAgentUser} {
		data, err := kubeconfig(c, server, user, nil, pki.DefaultTTL)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(l.kubeconfig(file), data, 0o600); err != nil {
			return err
		}
	}
	// Credentials of earlier versions, now handed out in memory only (Access).
	for _, old := range []string{"driver", "proxy"} {
		_ = os.Remove(l.kubeconfig(old))
	}
	record := wantLeaves(c, ports, externalHost)
	// Every certificate above lives pki.DefaultTTL from now; a little less is recorded.
	record.NotAfter = time.Now().Add(pki.DefaultTTL - time.Hour)
	data, _ := json.Marshal(record)
	return atomicfile.WriteFile(l.leavesFile(), data, 0o600)
}

// kubeconfig issues a client certificate from the client CA and returns a self-contained
// kubeconfig for it.
func kubeconfig(c *certs, server, user string, groups []string, ttl time.Duration) ([]byte, error) {
	certPEM, keyPEM, err := c.client.Issue(pki.Request{CommonName: user, Organizations: groups, Client: true, TTL: ttl})
	if err != nil {
		return nil, fmt.Errorf("issue a certificate for %s: %w", user, err)
	}
	return pki.Kubeconfig(server, c.ca.CertPEM(), certPEM, keyPEM, user)
}
