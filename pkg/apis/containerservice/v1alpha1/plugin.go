package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Plugin is an add-on of one Cluster of the tenant, chosen from the built-in catalog.
type Plugin struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the add-on the tenant asks for.
	// +optional
	Spec PluginSpec `json:"spec,omitempty"`
	// status is what the provisioner last observed of the add-on. It is written only
	// through the status subresource.
	// +optional
	Status PluginStatus `json:"status,omitempty"`
}

// PluginSpec is the desired state of a Plugin.
type PluginSpec struct {
	// clusterName is the name of the Cluster, in the same namespace, the add-on is
	// installed into. It cannot be changed.
	ClusterName string `json:"clusterName"`
	// type is the add-on from the built-in catalog: csi, gpu-device-plugin or monitoring
	// (the README lists each with its versions and settings). A cluster has at most one
	// Plugin of each type. It cannot be changed.
	Type string `json:"type"`
	// version is the catalog version of the add-on to run (for example 1.0.0). Empty
	// follows the catalog's newest version; status.version says which one runs.
	// +optional
	Version string `json:"version,omitempty"`
	// enabled installs the add-on when true and removes it when false. Defaults to true.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// config holds the add-on's settings by name (for example retention: 15d), each
	// checked against the type's typed settings in the catalog: an unknown name, a value
	// of the wrong type or out of range is refused. Settings not given take their defaults.
	// +optional
	Config map[string]string `json:"config,omitempty"`
}

// PluginPhase is the lifecycle phase of a Plugin.
// +enum
type PluginPhase string

const (
	// PluginPending means the add-on waits for its cluster or the provisioner.
	PluginPending PluginPhase = "Pending"
	// PluginApplying means the add-on's objects are being applied.
	PluginApplying PluginPhase = "Applying"
	// PluginReady means every object of the add-on is applied and ready.
	PluginReady PluginPhase = "Ready"
	// PluginDisabled means the add-on is switched off and its objects removed.
	PluginDisabled PluginPhase = "Disabled"
	// PluginFailed means applying failed; the conditions say why.
	PluginFailed PluginPhase = "Failed"
)

// PluginStatus is the observed state of a Plugin.
type PluginStatus struct {
	// phase is the lifecycle phase: Pending, Applying, Ready, Disabled or Failed.
	// +optional
	Phase PluginPhase `json:"phase,omitempty"`
	// version is the catalog version of the add-on the cluster runs.
	// +optional
	Version string `json:"version,omitempty"`
	// applied are the objects the add-on put into the user cluster.
	// +optional
	// +listType=atomic
	Applied []AppliedObject `json:"applied,omitempty"`
	// ready is true when every applied object is ready.
	// +optional
	Ready bool `json:"ready,omitempty"`
	// currentObjects is how many of the applied objects are Current (kstatus: applied,
	// rolled out and ready); kubectl get shows it against their number as READY.
	// +optional
	CurrentObjects int32 `json:"currentObjects,omitempty"`
	// renderDigest is the digest of the objects last applied (the add-on's version and
	// settings rendered for this cluster). A pass whose render has the same digest
	// writes nothing, and a server that restarts adopts what runs instead of applying
	// it all again.
	// +optional
	RenderDigest string `json:"renderDigest,omitempty"`
	// kept are objects the add-on made that were left in the cluster when it was
	// switched off, changed or deleted, because they hold data: a definition that still
	// has instances, a volume claim, a namespace holding objects the add-on did not make.
	// +optional
	// +listType=atomic
	Kept []AppliedObject `json:"kept,omitempty"`
	// conditions are the latest observations of the add-on's state.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the metadata.generation this status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// AppliedObject names one object an add-on put into the user cluster.
type AppliedObject struct {
	// apiVersion is the object's group and version.
	APIVersion string `json:"apiVersion"`
	// kind is the object's kind.
	Kind string `json:"kind"`
	// namespace is the object's namespace; empty for cluster-scoped objects.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name is the object's name.
	Name string `json:"name"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// PluginList is a list of Plugins.
type PluginList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the add-ons.
	Items []Plugin `json:"items"`
}
