package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +genclient:method=CreateAdminKubeconfig,verb=create,subresource=adminkubeconfig,input=github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1.AdminKubeconfigRequest,result=github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1.AdminKubeconfigRequest
// +genclient:method=GetKubeconfig,verb=get,subresource=kubeconfig,result=github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1.ClusterKubeconfig
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Cluster is a hard-isolated Kubernetes cluster of a tenant: its own etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and certificate authority, sharing nothing with
// any other cluster. Its namespace in the management plane is the tenant that owns it.
type Cluster struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the cluster the tenant asks for.
	// +optional
	Spec ClusterSpec `json:"spec,omitempty"`
	// status is what the provisioner last observed of the cluster. It is written only
	// through the status subresource.
	// +optional
	Status ClusterStatus `json:"status,omitempty"`
}

// ClusterSpec is the desired state of a Cluster.
type ClusterSpec struct {
	// version is the Kubernetes version of the control plane, one the driver has
	// (for example v1.37.1). Defaults to the newest supported version.
	// +optional
	Version string `json:"version,omitempty"`
	// controlPlane sizes the control plane.
	// +optional
	ControlPlane ControlPlaneSpec `json:"controlPlane,omitempty"`
	// network holds the cluster's address families and ranges. It cannot be changed
	// after the cluster is created.
	// +optional
	Network ClusterNetwork `json:"network,omitempty"`
	// administrators are the users and groups who get cluster-admin inside the cluster.
	// Defaults to the user who created the cluster.
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	Administrators []Subject `json:"administrators,omitempty"`
	// nodeDrainTimeout is how long deleting one of the cluster's Nodes waits for its pods
	// to be evicted before the node is deleted anyway; a Node's spec.drainTimeout
	// overrides it. Defaults to 5 minutes.
	// +optional
	NodeDrainTimeout *metav1.Duration `json:"nodeDrainTimeout,omitempty"`
}

// ControlPlaneSpec sizes a cluster's control plane.
type ControlPlaneSpec struct {
	// replicas is the number of control plane instances. Only 1 is supported for now;
	// 3, for high availability, will follow.
	// Defaults to 1.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
}

// IPFamily is an IP protocol version.
// +enum
type IPFamily string

const (
	// IPv4 is the IPv4 family.
	IPv4 IPFamily = "IPv4"
	// IPv6 is the IPv6 family.
	IPv6 IPFamily = "IPv6"
)

// ClusterNetwork holds a cluster's address families and the ranges pods and services take
// their addresses from.
type ClusterNetwork struct {
	// ipFamilies are the address families of the cluster: [IPv4], [IPv6], or both for
	// dual-stack, the first being the primary family. Defaults to the families of the
	// given CIDRs, or [IPv4].
	// +optional
	// +listType=atomic
	IPFamilies []IPFamily `json:"ipFamilies,omitempty"`
	// podCIDRs are the ranges pod addresses come from, one per family in ipFamilies order.
	// Each node gets a /24 (IPv4) or a /64 (IPv6) of it, so an IPv4 range must be /24 or
	// shorter and an IPv6 range /48 to /64. Defaults to 10.244.0.0/16 for IPv4 and
	// fd00:10:244::/56 for IPv6.
	// +optional
	// +listType=atomic
	PodCIDRs []string `json:"podCIDRs,omitempty"`
	// serviceCIDRs are the ranges service cluster IPs come from, one per family in
	// ipFamilies order, at most 20 host bits each, the first with at least 8 addresses.
	// Defaults to 10.96.0.0/12 for IPv4 and fd00:10:96::/108 for IPv6. They must not
	// overlap the pod ranges.
	// +optional
	// +listType=atomic
	ServiceCIDRs []string `json:"serviceCIDRs,omitempty"`
}

// ClusterPhase is the lifecycle phase of a Cluster.
// +enum
type ClusterPhase string

const (
	// ClusterPending means the cluster is accepted and waits for the provisioner.
	ClusterPending ClusterPhase = "Pending"
	// ClusterProvisioning means the control plane is being created.
	ClusterProvisioning ClusterPhase = "Provisioning"
	// ClusterRunning means every control plane component is healthy and a workload can be
	// applied: the default ServiceAccount and root CA of namespace default exist and the
	// permission groups are aggregated.
	ClusterRunning ClusterPhase = "Running"
	// ClusterUpdating means a change of the spec is being rolled out.
	ClusterUpdating ClusterPhase = "Updating"
	// ClusterDeleting means the cluster is being torn down.
	ClusterDeleting ClusterPhase = "Deleting"
	// ClusterFailed means provisioning failed; the conditions say why.
	ClusterFailed ClusterPhase = "Failed"
)

// ClusterStatus is the observed state of a Cluster.
type ClusterStatus struct {
	// phase is the lifecycle phase: Pending, Provisioning, Running, Updating, Deleting or Failed.
	// +optional
	Phase ClusterPhase `json:"phase,omitempty"`
	// version is the Kubernetes version the control plane runs.
	// +optional
	Version string `json:"version,omitempty"`
	// endpoints are the addresses of the cluster's kube-apiserver.
	// +optional
	Endpoints ClusterEndpoints `json:"endpoints,omitempty"`
	// nodes counts the cluster's worker nodes.
	// +optional
	Nodes NodeCounts `json:"nodes,omitempty"`
	// conditions are the latest observations of the cluster's state: Ready, and one per
	// control plane component.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the metadata.generation this status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// credentialsRotation is the value of the annotation
	// containerservice.ucloudstack.io/rotate-credentials the last completed rotation
	// answered.
	// +optional
	CredentialsRotation string `json:"credentialsRotation,omitempty"`
}

// ClusterEndpoints are the addresses a cluster's kube-apiserver is reached at.
type ClusterEndpoints struct {
	// internal is the URL the platform itself uses to reach the kube-apiserver.
	// +optional
	Internal string `json:"internal,omitempty"`
	// external is the URL users reach the kube-apiserver at from outside the platform.
	// +optional
	External string `json:"external,omitempty"`
}

// NodeCounts counts a cluster's worker nodes.
type NodeCounts struct {
	// ready is the number of nodes whose Ready condition is True.
	// +optional
	Ready int32 `json:"ready,omitempty"`
	// total is the number of nodes of the cluster.
	// +optional
	Total int32 `json:"total,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterList is a list of Clusters.
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the clusters.
	Items []Cluster `json:"items"`
}
