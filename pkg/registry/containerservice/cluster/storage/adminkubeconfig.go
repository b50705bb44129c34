package storage

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/validation"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

// AdminKubeconfigREST serves POST clusters/{name}/adminkubeconfig: a short-lived
// break-glass client certificate kubeconfig for whoever RBAC lets create the subresource.
// Its user is the caller's name behind v1alpha1.BreakGlassUserPrefix (so the cluster's
// audit log names the person) and its only group v1alpha1.BreakGlassGroup, which a
// ClusterRoleBinding in the cluster binds to cluster-admin: deleting that binding revokes
// every such credential without a rotation. Never system:masters, which nothing revokes.
type AdminKubeconfigREST struct {
	clusters rest.Getter
	driver   provisioner.Driver
	scheme   *runtime.Scheme
	// maxTTL caps the lifetime; longer requests get maxTTL, as TokenRequest does.
	maxTTL time.Duration
}

var _ rest.NamedCreater = &AdminKubeconfigREST{}

// NewAdminKubeconfigREST returns the subresource over the clusters' storage. driver may be
// nil when the server runs without a provisioner; requests then get 503. maxTTL caps the
// credentials' lifetime (zero: the API's own limit of 24 hours).
func NewAdminKubeconfigREST(clusters rest.Getter, driver provisioner.Driver, scheme *runtime.Scheme, maxTTL time.Duration) *AdminKubeconfigREST {
	return &AdminKubeconfigREST{clusters: clusters, driver: driver, scheme: scheme, maxTTL: maxTTL}
}

// New returns an empty request.
func (r *AdminKubeconfigREST) New() runtime.Object { return &cs.AdminKubeconfigRequest{} }

// Destroy does nothing: the subresource holds no storage.
func (r *AdminKubeconfigREST) Destroy() {}

// Create issues the kubeconfig.
func (r *AdminKubeconfigREST) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	req, ok := obj.(*cs.AdminKubeconfigRequest)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not an AdminKubeconfigRequest: %T", obj))
	}
	if errs := validation.ValidateAdminKubeconfigRequest(req); len(errs) > 0 {
		return nil, apierrors.NewInvalid(cs.Kind("AdminKubeconfigRequest"), name, errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	user, ok := genericapirequest.UserFrom(ctx)
	if !ok || user.GetName() == "" {
		return nil, apierrors.NewUnauthorized("no user in the request")
	}
	if r.driver == nil {
		return nil, apierrors.NewServiceUnavailable("this server runs without a provisioner")
	}
	internal, err := r.clusters.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var cluster v1alpha1.Cluster
	if err := r.scheme.Convert(internal, &cluster, nil); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if cluster.Status.Phase != v1alpha1.ClusterRunning && cluster.Status.Phase != v1alpha1.ClusterUpdating {
		return nil, apierrors.NewConflict(cs.Resource("clusters"), name,
			fmt.Errorf("the cluster is %s, not Running; ask again once it is Ready", cluster.Status.Phase))
	}
	ttl := time.Duration(*req.Spec.ExpirationSeconds) * time.Second
	if r.maxTTL > 0 && ttl > r.maxTTL {
		ttl = r.maxTTL
	}
	data, expires, err := r.driver.AdminKubeconfig(ctx, &cluster, provisioner.Credential{
		User:     v1alpha1.BreakGlassUserPrefix + user.GetName(),
		Groups:   []string{v1alpha1.BreakGlassGroup},
		TTL:      ttl,
		External: req.Spec.Endpoint == cs.EndpointExternal,
	})
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("issue a kubeconfig for cluster %s: %v", name, err))
	}
	out := req.DeepCopy()
	out.Name, out.Namespace = name, cluster.Namespace
	out.Status = cs.AdminKubeconfigRequestStatus{Kubeconfig: data, ExpirationTimestamp: metav1.NewTime(expires)}
	return out, nil
}
