package containerservice

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterProxyOptions are the options of clusters/{name}/proxy/{path}: the tenant proxy,
// which forwards a request to the cluster's kube-apiserver as the caller's own
// ServiceAccount inside the cluster.
type ClusterProxyOptions struct {
	metav1.TypeMeta `json:",inline"`

	// path is the path of the request inside the cluster (for example /api/v1/pods);
	// empty means /.
	// +optional
	Path string `json:"path,omitempty"`
}
