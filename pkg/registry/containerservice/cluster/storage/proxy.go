package storage

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilproxy "k8s.io/apimachinery/pkg/util/proxy"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/proxy"
)

// ProxyREST serves clusters/{name}/proxy/{path}: the tenant proxy. Whoever the host's
// RBAC lets use the subresource and who has an identity inside the cluster reaches its
// kube-apiserver as that identity; everyone else is refused before anything is forwarded.
type ProxyREST struct {
	clusters rest.Getter
	scheme   *runtime.Scheme
	proxy    *proxy.Proxy
	members  *proxy.Members
}

var _ rest.Connecter = &ProxyREST{}

// NewProxyREST returns the subresource; p may be nil when the server runs without a
// provisioner (requests then get 503). members holds the projects' members.
func NewProxyREST(clusters rest.Getter, scheme *runtime.Scheme, p *proxy.Proxy, members *proxy.Members) *ProxyREST {
	return &ProxyREST{clusters: clusters, scheme: scheme, proxy: p, members: members}
}

// New returns the options object.
func (r *ProxyREST) New() runtime.Object { return &cs.ClusterProxyOptions{} }

// Destroy does nothing: the subresource holds no storage.
func (r *ProxyREST) Destroy() {}

// ConnectMethods are every verb a Kubernetes client uses.
func (r *ProxyREST) ConnectMethods() []string {
	return []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
}

// NewConnectOptions takes the path after proxy/ as the path inside the cluster.
func (r *ProxyREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &cs.ClusterProxyOptions{}, true, "path"
}

// Connect resolves the caller's identity inside the cluster and returns the handler that
// forwards the request.
func (r *ProxyREST) Connect(ctx context.Context, name string, opts runtime.Object, responder rest.Responder) (http.Handler, error) {
	options, ok := opts.(*cs.ClusterProxyOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unexpected options %T", opts))
	}
	caller, ok := genericapirequest.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewUnauthorized("no user in the request")
	}
	if r.proxy == nil {
		return nil, apierrors.NewServiceUnavailable("this server runs without a provisioner")
	}
	// From the watch cache (resourceVersion 0), not a read of etcd per proxied request:
	// it trails etcd by milliseconds, well within the seconds in which a change of
	// administrators must take effect.
	internal, err := r.clusters.Get(ctx, name, &metav1.GetOptions{ResourceVersion: "0"})
	if err != nil {
		return nil, err
	}
	var cluster v1alpha1.Cluster
	if err := r.scheme.Convert(internal, &cluster, nil); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	innerNamespace := proxy.InnerNamespace("/" + strings.TrimPrefix(options.Path, "/"))
	target, decision := proxy.TargetFor(&cluster, r.members, caller, innerNamespace)
	switch decision {
	case proxy.Allowed:
	case proxy.NotReady:
		return nil, retryLater(fmt.Sprintf("the bindings of %q in cluster %s are being put in place; try again in a moment", caller.GetName(), name), 1)
	default:
		return nil, apierrors.NewForbidden(cs.Resource("clusters/proxy"), name,
			fmt.Errorf("%q has no identity in cluster %s: neither one of its administrators nor a member of a project placed in it", caller.GetName(), name))
	}
	switch cluster.Status.Phase {
	case v1alpha1.ClusterRunning, v1alpha1.ClusterUpdating:
	default:
		return nil, retryLater(fmt.Sprintf("cluster %s is %s; try again once it is Running", name, cluster.Status.Phase), 5)
	}
	// A session that lasts (a watch, exec, port-forward) ends once its caller has no
	// identity in the cluster any more, or the cluster is gone or another of its name.
	still := func() bool {
		ctx := genericapirequest.WithNamespace(context.Background(), cluster.Namespace)
		internal, err := r.clusters.Get(ctx, name, &metav1.GetOptions{ResourceVersion: "0"})
		if apierrors.IsNotFound(err) {
			return false
		}
		if err != nil {
			return true // not known now: asked again in a moment
		}
		var now v1alpha1.Cluster
		if err := r.scheme.Convert(internal, &now, nil); err != nil || now.UID != cluster.UID {
			return false
		}
		_, decision := proxy.TargetFor(&now, r.members, caller, innerNamespace)
		return decision != proxy.Forbidden
	}
	h, err := r.proxy.Handler(ctx, &cluster, target, options.Path, utilproxy.NewErrorResponder(responder), still)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("reach cluster %s: %v", name, err))
	}
	return h, nil
}

// retryLater is a 503 with Retry-After, which client-go and kubectl wait for and retry.
func retryLater(msg string, seconds int32) error {
	unavailable := apierrors.NewServiceUnavailable(msg)
	unavailable.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: seconds}
	return unavailable
}
