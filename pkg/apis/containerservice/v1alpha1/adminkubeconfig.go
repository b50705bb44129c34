package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AdminKubeconfigRequest asks, through the clusters/adminkubeconfig subresource, for a
// short-lived kubeconfig with a client certificate that is cluster-admin in the cluster:
// break-glass access that bypasses the proxy. The certificate names the requesting user,
// so the cluster's audit log shows who used it. Rotating the cluster's credentials
// revokes every such kubeconfig.
type AdminKubeconfigRequest struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says how long the credential lives and which endpoint it points at.
	// +optional
	Spec AdminKubeconfigRequestSpec `json:"spec,omitempty"`
	// status holds the issued kubeconfig.
	// +optional
	Status AdminKubeconfigRequestStatus `json:"status,omitempty"`
}

// AdminKubeconfigEndpoint chooses which address of the cluster a kubeconfig points at.
// +enum
type AdminKubeconfigEndpoint string

const (
	// EndpointInternal is the address the platform itself uses.
	EndpointInternal AdminKubeconfigEndpoint = "internal"
	// EndpointExternal is the address users reach from outside the platform.
	EndpointExternal AdminKubeconfigEndpoint = "external"
)

// AdminKubeconfigRequestSpec is what the caller asks for.
type AdminKubeconfigRequestSpec struct {
	// expirationSeconds is the credential's lifetime: at least 600 (10 minutes), at most
	// 86400 (24 hours). Defaults to 3600. The server may cap it lower
	// (--admin-kubeconfig-max-expiration); status.expirationTimestamp says when the
	// credential really expires.
	// +optional
	ExpirationSeconds *int64 `json:"expirationSeconds,omitempty"`
	// endpoint is internal or external. Defaults to external.
	// +optional
	Endpoint AdminKubeconfigEndpoint `json:"endpoint,omitempty"`
}

// AdminKubeconfigRequestStatus is the issued credential.
type AdminKubeconfigRequestStatus struct {
	// kubeconfig is the kubeconfig, YAML, holding the client certificate and its key.
	// +optional
	Kubeconfig []byte `json:"kubeconfig,omitempty"`
	// expirationTimestamp is when the certificate stops being valid.
	// +optional
	ExpirationTimestamp metav1.Time `json:"expirationTimestamp,omitempty"`
}
