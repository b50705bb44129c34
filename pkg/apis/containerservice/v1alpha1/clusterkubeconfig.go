package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterKubeconfig is what GET clusters/{name}/kubeconfig returns: a kubeconfig that
// reaches the cluster through the platform's tenant proxy, authenticating with the
// platform's OIDC provider (through the kubectl oidc-login credential plugin). It holds
// no secret: whoever uses it still has to log in, and the proxy then acts as that user's
// ServiceAccount inside the cluster.
type ClusterKubeconfig struct {
	metav1.TypeMeta `json:",inline"`
	// metadata names the cluster.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// kubeconfig is the kubeconfig, YAML.
	// +optional
	Kubeconfig []byte `json:"kubeconfig,omitempty"`
}
