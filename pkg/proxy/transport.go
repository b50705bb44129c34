package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

// clusterTransport reaches one cluster's kube-apiserver as the proxy identity.
type clusterTransport struct {
	// cert is the proxy identity's certificate the transports present: a new one (a
	// rotation, a renewal) means new transports.
	cert []byte
	base *url.URL
	// h2 carries ordinary requests, many streams over few connections; h1 carries
	// upgrades (exec, attach, port-forward), which need HTTP/1.1.
	h2, h1 *http.Transport
}

// transports keeps one clusterTransport per cluster, so that connections to a cluster
// are shared by all its callers.
type transports struct {
	access provisioner.Access
	mu     sync.Mutex
	byUID  map[types.UID]*clusterTransport
}

func newTransports(access provisioner.Access) *transports {
	return &transports{access: access, byUID: map[types.UID]*clusterTransport{}}
}

// get returns the cluster's transports, made anew when the proxy identity's credential
// changed; the old ones' idle connections are closed, requests in flight finish.
func (t *transports) get(ctx context.Context, c *v1alpha1.Cluster) (*clusterTransport, error) {
	cfg, err := t.access.RESTConfig(ctx, c, provisioner.Proxy)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if ct, ok := t.byUID[c.UID]; ok && bytes.Equal(ct.cert, cfg.CertData) {
		return ct, nil
	}
	ct, err := newClusterTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("transport to %s/%s: %w", c.Namespace, c.Name, err)
	}
	if old, ok := t.byUID[c.UID]; ok {
		old.h2.CloseIdleConnections()
		old.h1.CloseIdleConnections()
	}
	t.byUID[c.UID] = ct
	return ct, nil
}

// forget drops a cluster's transports (it was deleted).
func (t *transports) forget(uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ct, ok := t.byUID[uid]; ok {
		ct.h2.CloseIdleConnections()
		ct.h1.CloseIdleConnections()
		delete(t.byUID, uid)
	}
}

func newClusterTransport(cfg *rest.Config) (*clusterTransport, error) {
	base, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, err
	}
	// DisableCompression: the caller's Accept-Encoding goes through as it is, so that a
	// response is compressed only for a caller that asked, and never decompressed here.
	h2 := utilnet.SetTransportDefaults(&http.Transport{TLSClientConfig: tlsConfig.Clone(), MaxIdleConnsPerHost: 64, DisableCompression: true})
	h1TLS := tlsConfig.Clone()
	h1TLS.NextProtos = []string{"http/1.1"}
	h1 := utilnet.SetTransportDefaults(&http.Transport{TLSClientConfig: h1TLS, ForceAttemptHTTP2: false})
	h1.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	return &clusterTransport{cert: bytes.Clone(cfg.CertData), base: base, h2: h2, h1: h1}, nil
}
