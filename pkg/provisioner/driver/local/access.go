package local

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
)

// Credentials of platform identities live accessTTL and are issued again when less than
// half is left or the client CA changed (a rotation).
const accessTTL = 24 * time.Hour

// identities are the subjects of the platform identities' certificates.
var identities = map[provisioner.Identity][]string{
	// The platform manager creates RBAC itself, so it cannot depend on RBAC.
	provisioner.PlatformManager: {user.SystemPrivilegedGroup},
	// The proxy has no group: what it may do comes from the RBAC the platform puts in.
	provisioner.Proxy: nil,
}

// accessCache keeps each identity's configuration until it must be issued again.
type accessCache struct {
	mu      sync.Mutex
	entries map[provisioner.Identity]accessEntry
}

type accessEntry struct {
	cfg      *rest.Config
	clientCA string
	renewAt  time.Time
}

// RESTConfig returns a configuration for the cluster's kube-apiserver as a platform
// identity, its client certificate issued in memory from the cluster's client CA.
func (d *Driver) RESTConfig(_ context.Context, c *v1alpha1.Cluster, id provisioner.Identity) (*rest.Config, error) {
	groups, ok := identities[id]
	if !ok {
		return nil, fmt.Errorf("unknown platform identity %q", id)
	}
	inst, crts, err := d.running(c)
	if err != nil {
		return nil, err
	}
	fp := crts.client.Fingerprint()
	inst.access.mu.Lock()
	defer inst.access.mu.Unlock()
	if e, ok := inst.access.entries[id]; ok && e.clientCA == fp && time.Now().Before(e.renewAt) {
		return rest.CopyConfig(e.cfg), nil
	}
	certPEM, keyPEM, err := crts.client.Issue(pki.Request{CommonName: string(id), Organizations: groups, Client: true, TTL: accessTTL})
	if err != nil {
		return nil, fmt.Errorf("issue a credential for %s in %s: %w", id, key(c), err)
	}
	cfg := &rest.Config{
		Host:            "https://127.0.0.1:" + strconv.Itoa(inst.ports[portAPIServer]),
		TLSClientConfig: rest.TLSClientConfig{CAData: crts.ca.CertPEM(), CertData: certPEM, KeyData: keyPEM},
		UserAgent:       "containerservice/" + string(id),
		// Loopback: gzip would only cost CPU on both ends and ~70 KiB per open watch (a
		// decompressor here, a compressor in the kube-apiserver), for every watch the
		// controllers hold in every cluster.
		DisableCompression: true,
	}
	if inst.access.entries == nil {
		inst.access.entries = map[provisioner.Identity]accessEntry{}
	}
	inst.access.entries[id] = accessEntry{cfg: cfg, clientCA: fp, renewAt: time.Now().Add(accessTTL / 2)}
	return rest.CopyConfig(cfg), nil
}

// AdminKubeconfig issues a client certificate for cred from the cluster's client CA.
func (d *Driver) AdminKubeconfig(_ context.Context, c *v1alpha1.Cluster, cred provisioner.Credential) ([]byte, time.Time, error) {
	if slices.Contains(cred.Groups, user.SystemPrivilegedGroup) {
		// Break-glass credentials are revocable through RBAC; system:masters never is.
		return nil, time.Time{}, fmt.Errorf("refusing to issue a credential in %s", user.SystemPrivilegedGroup)
	}
	inst, crts, err := d.running(c)
	if err != nil {
		return nil, time.Time{}, err
	}
	port := strconv.Itoa(inst.ports[portAPIServer])
	server := "https://127.0.0.1:" + port
	if cred.External {
		server = "https://" + d.cfg.ExternalHost + ":" + port
	}
	data, err := kubeconfig(crts, server, cred.User, cred.Groups, cred.TTL)
	return data, time.Now().Add(cred.TTL), err
}
