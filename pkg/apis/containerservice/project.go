package containerservice

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Project is a team's slice of the tenant's clusters: one namespace in each of its
// clusters, where each member's ServiceAccount (or member group) is bound to the
// permission group of its role.
type Project struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the project the tenant asks for.
	// +optional
	Spec ProjectSpec `json:"spec,omitempty"`
	// status is what the provisioner last observed in each cluster. It is written only
	// through the status subresource.
	// +optional
	Status ProjectStatus `json:"status,omitempty"`
}

// ProjectSpec is the desired state of a Project.
type ProjectSpec struct {
	// displayName is a human-readable name for consoles.
	// +optional
	DisplayName string `json:"displayName,omitempty"`
	// clusters are the names of Clusters, in the same namespace, the project spans.
	// +optional
	// +listType=set
	Clusters []string `json:"clusters,omitempty"`
	// namespace is the project's namespace inside each of its clusters. Defaults to the
	// project's name; it cannot be changed.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// members are the users and groups of the project and their roles.
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	Members []ProjectMember `json:"members,omitempty"`
	// namespacePolicy says what becomes of the project's namespace in a cluster the
	// project leaves (the cluster is removed from clusters, or the project is deleted):
	// Retain (the default) keeps the namespace and its workloads and removes only the
	// platform's bindings; Delete deletes the namespace and everything in it.
	// +optional
	NamespacePolicy ProjectNamespacePolicy `json:"namespacePolicy,omitempty"`
}

// ProjectNamespacePolicy is what becomes of a project's namespace in a cluster it leaves.
// +enum
type ProjectNamespacePolicy string

const (
	// ProjectNamespaceRetain keeps the namespace and its workloads.
	ProjectNamespaceRetain ProjectNamespacePolicy = "Retain"
	// ProjectNamespaceDelete deletes the namespace and everything in it.
	ProjectNamespaceDelete ProjectNamespacePolicy = "Delete"
)

// ProjectRole is a permission group a project member is bound to.
type ProjectRole string

const (
	// ProjectRoleAdmin manages everything in the project's namespace, RBAC included.
	ProjectRoleAdmin ProjectRole = "admin"
	// ProjectRoleEdit changes workloads in the project's namespace.
	ProjectRoleEdit ProjectRole = "edit"
	// ProjectRoleView reads the project's namespace, secrets excepted.
	ProjectRoleView ProjectRole = "view"
)

// ProjectMember is a user or group of a project and its role.
type ProjectMember struct {
	// kind is User or Group.
	Kind SubjectKind `json:"kind"`
	// name is the user or group name as the authenticator reports it. Names starting
	// with "system:" are refused.
	Name string `json:"name"`
	// role is the permission group: admin, edit or view.
	Role ProjectRole `json:"role"`
}

// ProjectPhase is the overall state of a Project.
type ProjectPhase string

const (
	// ProjectPending means the project waits for the provisioner or its clusters.
	ProjectPending ProjectPhase = "Pending"
	// ProjectReady means the namespace and bindings are in place in every cluster.
	ProjectReady ProjectPhase = "Ready"
	// ProjectFailed means at least one cluster could not be set up; the per-cluster status says why.
	ProjectFailed ProjectPhase = "Failed"
)

// ProjectStatus is the observed state of a Project.
type ProjectStatus struct {
	// phase is the overall state: Pending, Ready or Failed.
	// +optional
	Phase ProjectPhase `json:"phase,omitempty"`
	// clusters is the project's state in each of its clusters.
	// +optional
	// +listType=map
	// +listMapKey=name
	Clusters []ProjectClusterStatus `json:"clusters,omitempty"`
	// conditions are the latest observations of the project's state.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the metadata.generation this status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// retained are the namespaces the project left behind, with their workloads, in
	// clusters it no longer spans (namespacePolicy Retain); the platform's bindings there
	// are gone.
	// +optional
	// +listType=map
	// +listMapKey=cluster
	Retained []ProjectRetainedNamespace `json:"retained,omitempty"`
}

// ProjectRetainedNamespace is a namespace a project kept in a cluster it left.
type ProjectRetainedNamespace struct {
	// cluster is the cluster's name.
	Cluster string `json:"cluster"`
	// namespace is the namespace kept there.
	Namespace string `json:"namespace"`
}

// ProjectClusterStatus is a project's state in one cluster.
type ProjectClusterStatus struct {
	// name is the cluster's name.
	Name string `json:"name"`
	// namespace is the project's namespace in that cluster.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// phase is Pending, Ready or Failed for that cluster.
	// +optional
	Phase ProjectPhase `json:"phase,omitempty"`
	// message says what is wrong when phase is Failed.
	// +optional
	Message string `json:"message,omitempty"`
	// observedGeneration is the metadata.generation applied in that cluster.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ProjectList is a list of Projects.
type ProjectList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the projects.
	Items []Project `json:"items"`
}
