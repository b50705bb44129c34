package containerservice

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Node is a worker node of one Cluster of the tenant. Deleting it drains it first.
type Node struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the node the tenant asks for.
	// +optional
	Spec NodeSpec `json:"spec,omitempty"`
	// status is what the provisioner last observed of the node, mirrored from the user
	// cluster. It is written only through the status subresource.
	// +optional
	Status NodeStatus `json:"status,omitempty"`
}

// NodeSpec is the desired state of a Node.
type NodeSpec struct {
	// clusterName is the name of the Cluster, in the same namespace, the node joins.
	// It cannot be changed.
	ClusterName string `json:"clusterName"`
	// resources are the capacity the node offers to pods.
	// +optional
	Resources NodeResources `json:"resources,omitempty"`
	// labels are put on the node inside the user cluster.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// taints are put on the node inside the user cluster.
	// +optional
	// +listType=atomic
	Taints []Taint `json:"taints,omitempty"`
	// unschedulable cordons the node: no new pods are placed on it.
	// +optional
	Unschedulable bool `json:"unschedulable,omitempty"`
	// drainTimeout bounds the drain that comes before the node's deletion: once it has
	// passed, the node is deleted with whatever pods are left on it. Defaults to the
	// cluster's spec.nodeDrainTimeout, or 5 minutes.
	// +optional
	DrainTimeout *metav1.Duration `json:"drainTimeout,omitempty"`
}

// NodeResources is the capacity of a node.
type NodeResources struct {
	// cpu is the number of CPUs, as a quantity (for example "8" or "500m"). Defaults to 4.
	// +optional
	CPU resource.Quantity `json:"cpu,omitempty"`
	// memory is the amount of memory, as a quantity (for example 32Gi). Defaults to 8Gi.
	// +optional
	Memory resource.Quantity `json:"memory,omitempty"`
	// gpu describes the node's GPUs; nil means none.
	// +optional
	GPU *GPUResources `json:"gpu,omitempty"`
	// pods is the number of pods the node can run. Defaults to 110.
	// +optional
	Pods int32 `json:"pods,omitempty"`
}

// GPUResources describes the GPUs of a node, advertised as nvidia.com/gpu.
type GPUResources struct {
	// count is the number of GPUs.
	Count int32 `json:"count"`
	// model is the GPU model (for example nvidia-tesla-t4), put on the node as a label.
	// +optional
	Model string `json:"model,omitempty"`
}

// TaintEffect is what a taint does to pods that do not tolerate it.
type TaintEffect string

const (
	// TaintEffectNoSchedule keeps new pods off the node.
	TaintEffectNoSchedule TaintEffect = "NoSchedule"
	// TaintEffectPreferNoSchedule avoids the node when another fits.
	TaintEffectPreferNoSchedule TaintEffect = "PreferNoSchedule"
	// TaintEffectNoExecute also evicts running pods.
	TaintEffectNoExecute TaintEffect = "NoExecute"
)

// Taint repels pods that do not tolerate it from a node.
type Taint struct {
	// key is the taint key, a qualified name.
	Key string `json:"key"`
	// value is the taint value, a label value.
	// +optional
	Value string `json:"value,omitempty"`
	// effect is NoSchedule, PreferNoSchedule or NoExecute.
	Effect TaintEffect `json:"effect"`
}

// NodePhase is the lifecycle phase of a Node.
type NodePhase string

const (
	// NodePending means the node is accepted and waits for the provisioner.
	NodePending NodePhase = "Pending"
	// NodeProvisioning means the node is being created and joined.
	NodeProvisioning NodePhase = "Provisioning"
	// NodeReady means the node is Ready in the user cluster.
	NodeReady NodePhase = "Ready"
	// NodeNotReady means the node joined but is not Ready.
	NodeNotReady NodePhase = "NotReady"
	// NodeDraining means the node's pods are being evicted before deletion.
	NodeDraining NodePhase = "Draining"
	// NodeDeleting means the node is being removed.
	NodeDeleting NodePhase = "Deleting"
	// NodeFailed means the node could not be provisioned; the conditions say why.
	NodeFailed NodePhase = "Failed"
)

// NodeStatus is the observed state of a Node.
type NodeStatus struct {
	// phase is the lifecycle phase: Pending, Provisioning, Ready, NotReady, Draining, Deleting or Failed.
	// +optional
	Phase NodePhase `json:"phase,omitempty"`
	// conditions are mirrored from the node in the user cluster.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// allocatable is what the node offers to pods, by resource name, as the user cluster reports it.
	// +optional
	Allocatable map[string]resource.Quantity `json:"allocatable,omitempty"`
	// addresses are the node's addresses in the user cluster.
	// +optional
	// +listType=atomic
	Addresses []NodeAddress `json:"addresses,omitempty"`
	// kubeletVersion is the version of the node's kubelet.
	// +optional
	KubeletVersion string `json:"kubeletVersion,omitempty"`
	// pods is the number of pods bound to the node.
	// +optional
	Pods int32 `json:"pods,omitempty"`
	// podPhases counts the pods bound to the node by phase.
	// +optional
	PodPhases PodPhaseCounts `json:"podPhases,omitempty"`
	// drain is the progress of draining the node before deletion; nil when not draining.
	// +optional
	Drain *DrainStatus `json:"drain,omitempty"`
	// observedGeneration is the metadata.generation this status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// NodeAddress is one address of a node.
type NodeAddress struct {
	// type is the kind of address: InternalIP, ExternalIP, Hostname, InternalDNS or ExternalDNS.
	Type string `json:"type"`
	// address is the address itself.
	Address string `json:"address"`
}

// PodPhaseCounts counts pods by phase.
type PodPhaseCounts struct {
	// pending pods are accepted but not all their containers run yet.
	// +optional
	Pending int32 `json:"pending,omitempty"`
	// running pods have all their containers started.
	// +optional
	Running int32 `json:"running,omitempty"`
	// succeeded pods ended with every container successful.
	// +optional
	Succeeded int32 `json:"succeeded,omitempty"`
	// failed pods ended with a container that failed.
	// +optional
	Failed int32 `json:"failed,omitempty"`
}

// DrainStatus is the progress of draining a node.
type DrainStatus struct {
	// startTime is when draining started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// deadline is when draining gives up and the node is deleted anyway.
	// +optional
	Deadline *metav1.Time `json:"deadline,omitempty"`
	// podsRemaining is the number of pods still to be evicted.
	// +optional
	PodsRemaining int32 `json:"podsRemaining,omitempty"`
	// blockedBy says what keeps pods from being evicted, one entry per pod, naming the
	// PodDisruptionBudget that refuses its eviction.
	// +optional
	// +listType=atomic
	BlockedBy []string `json:"blockedBy,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// NodeList is a list of Nodes.
type NodeList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the nodes.
	Items []Node `json:"items"`
}
