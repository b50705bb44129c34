package storage

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// KubeconfigConfig says where users reach the platform and how they log in.
type KubeconfigConfig struct {
	// PublicURL is the host kube-apiserver's URL as users reach it; the proxy path of
	// each cluster hangs below it.
	PublicURL string
	// PublicCA is the PEM bundle that verifies PublicURL's serving certificate.
	PublicCA []byte
	// OIDCIssuerURL and OIDCClientID are what the oidc-login plugin logs in with.
	OIDCIssuerURL, OIDCClientID string
	// OIDCCA is the PEM bundle that verifies the issuer, when the system roots do not.
	OIDCCA []byte
}

// KubeconfigREST serves GET clusters/{name}/kubeconfig.
type KubeconfigREST struct {
	clusters rest.Getter
	cfg      KubeconfigConfig
}

var (
	_ rest.Getter                   = &KubeconfigREST{}
	_ rest.GroupVersionKindProvider = &KubeconfigREST{}
)

// NewKubeconfigREST returns the subresource over the clusters' storage.
func NewKubeconfigREST(clusters rest.Getter, cfg KubeconfigConfig) *KubeconfigREST {
	return &KubeconfigREST{clusters: clusters, cfg: cfg}
}

// New returns an empty ClusterKubeconfig.
func (r *KubeconfigREST) New() runtime.Object { return &cs.ClusterKubeconfig{} }

// Destroy does nothing: the subresource holds no storage.
func (r *KubeconfigREST) Destroy() {}

// GroupVersionKind tells discovery the subresource returns ClusterKubeconfig, not Cluster.
func (r *KubeconfigREST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return v1alpha1.SchemeGroupVersion.WithKind("ClusterKubeconfig")
}

// Get returns the kubeconfig of an existing cluster.
func (r *KubeconfigREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	obj, err := r.clusters.Get(ctx, name, options)
	if err != nil {
		return nil, err
	}
	cluster := obj.(*cs.Cluster)
	if r.cfg.OIDCIssuerURL == "" || r.cfg.OIDCClientID == "" || r.cfg.PublicURL == "" {
		return nil, apierrors.NewServiceUnavailable("user kubeconfigs need the platform's OIDC provider and public address: start the server with --oidc-issuer-url, --oidc-client-id and --public-url (use clusters/adminkubeconfig for break-glass access)")
	}
	data, err := UserKubeconfig(r.cfg, cluster.Namespace, cluster.Name)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return &cs.ClusterKubeconfig{ObjectMeta: metav1.ObjectMeta{Name: cluster.Name, Namespace: cluster.Namespace}, Kubeconfig: data}, nil
}

// UserKubeconfig is the kubeconfig of one cluster for users: the server is the cluster's
// proxy path on the host, and credentials come from the oidc-login exec plugin.
func UserKubeconfig(cfg KubeconfigConfig, namespace, name string) ([]byte, error) {
	server, err := url.JoinPath(cfg.PublicURL, "apis", v1alpha1.GroupName, v1alpha1.SchemeGroupVersion.Version,
		"namespaces", namespace, "clusters", name, "proxy")
	if err != nil {
		return nil, fmt.Errorf("proxy URL of %s/%s: %w", namespace, name, err)
	}
	contextName := namespace + "/" + name
	kc := clientcmdapi.NewConfig()
	kc.Clusters[contextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: cfg.PublicCA}
	args := []string{"oidc-login", "get-token",
		"--oidc-issuer-url=" + cfg.OIDCIssuerURL,
		"--oidc-client-id=" + cfg.OIDCClientID}
	if len(cfg.OIDCCA) > 0 {
		args = append(args, "--certificate-authority-data="+base64.StdEncoding.EncodeToString(cfg.OIDCCA))
	}
	kc.AuthInfos["oidc"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
		APIVersion:      "client.authentication.k8s.io/v1",
		Command:         "kubectl",
		Args:            args,
		InteractiveMode: clientcmdapi.IfAvailableExecInteractiveMode,
		InstallHint:     "install the kubectl oidc-login plugin (kubelogin), e.g. `kubectl krew install oidc-login`",
	}}
	kc.Contexts[contextName] = &clientcmdapi.Context{Cluster: contextName, AuthInfo: "oidc"}
	kc.CurrentContext = contextName
	return clientcmd.Write(*kc)
}
