// Package proxy is the tenant proxy: it forwards a caller's request to a user cluster's
// kube-apiserver as the proxy identity (ucs:proxy), impersonating the caller's own
// ServiceAccount there, so that the user cluster's RBAC decides what the caller may do.
// It is built on k8s.io/apimachinery's UpgradeAwareHandler (streaming, upgrades for exec,
// attach and port-forward, no redirects followed, a failed upgrade never becomes a
// tunnel) and client-go's impersonating round tripper.
package proxy

import (
	"context"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/client-go/transport"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

// Proxy forwards requests into user clusters.
type Proxy struct {
	transports *transports
	sessions   sessions
}

// New returns a proxy that reaches clusters through access.
func New(access provisioner.Access) *Proxy {
	return &Proxy{transports: newTransports(access)}
}

// Forget drops what the proxy keeps of a cluster.
func (p *Proxy) Forget(uid types.UID) { p.transports.forget(uid) }

// Handler forwards a request to path inside the cluster as target. The inbound request
// is not changed: a copy, scrubbed of every header through which the caller could speak
// for someone else or leak a credential, is what goes on. A long-running request is
// ended once still (asked every few seconds; nil: never) says its caller may no longer
// enter the cluster.
func (p *Proxy) Handler(ctx context.Context, c *v1alpha1.Cluster, target Target, path string, responder proxy.ErrorResponder, still func() bool) (http.Handler, error) {
	ct, err := p.transports.get(ctx, c)
	if err != nil {
		return nil, err
	}
	impersonation := transport.ImpersonationConfig{
		UserName: target.Impersonated(),
		Groups:   target.Groups,
		Extra:    map[string][]string{v1alpha1.UsernameKey: {target.Username}},
	}
	if path == "" || !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case !LongRunning(req, path):
			w = batchedWriter{w}
		case still != nil:
			ctx, tracked, done := p.sessions.track(req.Context(), w, still)
			defer done()
			req, w = req.WithContext(ctx), tracked
		}
		out := req.Clone(req.Context())
		scrub(out.Header)
		location := *ct.base
		location.Path = utilnet.JoinPreservingTrailingSlash(ct.base.Path, path)
		location.RawQuery = req.URL.RawQuery

		h := proxy.NewUpgradeAwareHandler(&location, identify(impersonation, ct.h2), false, false, responder)
		h.UpgradeTransport = proxy.NewUpgradeRequestRoundTripper(ct.h1, identify(impersonation, proxy.MirrorRequest))
		h.UseLocationHost = true
		h.RejectForwardingRedirects = true
		h.ServeHTTP(w, out)
	}), nil
}

// identify sets who the request acts as, last, after the reverse proxy dropped hop-by-hop
// headers (so no Connection header can remove it), and passes the request's audit ID on,
// so that the user cluster's audit log and ours share it.
func identify(impersonation transport.ImpersonationConfig, next http.RoundTripper) http.RoundTripper {
	return identifying{transport.NewImpersonatingRoundTripper(impersonation, next)}
}

type identifying struct{ impersonating http.RoundTripper }

func (rt identifying) RoundTrip(req *http.Request) (*http.Response, error) {
	req = utilnet.CloneRequest(req)
	scrub(req.Header)
	if id := audit.GetAuditIDTruncated(req.Context()); id != "" {
		req.Header.Set("Audit-ID", id)
	}
	return rt.impersonating.RoundTrip(req)
}

// WrappedRoundTripper lets the upgrade machinery see the transport underneath.
func (rt identifying) WrappedRoundTripper() http.RoundTripper { return rt.impersonating }
