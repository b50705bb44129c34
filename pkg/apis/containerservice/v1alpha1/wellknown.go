package v1alpha1

import "time"

// The names below are part of the API: clients, operators and the platform's own
// controllers rely on them, so they change only with a new API version.

const (
	// ClusterFinalizer keeps a Cluster until its control plane is gone. Only the
	// provisioner (and platform operators in system:masters) may remove it: a tenant who
	// could would leave a running control plane behind.
	ClusterFinalizer = GroupName + "/control-plane"

	// RotateCredentialsAnnotation asks for a credential rotation of a Cluster: set it to a
	// new value (a timestamp, say) and the provisioner replaces the cluster's client CA
	// once for that value; status.credentialsRotation then shows the value.
	RotateCredentialsAnnotation = GroupName + "/rotate-credentials"

	// ManagedByLabel marks, with the value ManagedByValue, what the platform put into a
	// user cluster.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel on the platform's objects.
	ManagedByValue = "containerservice"
)

// Condition types of a Cluster.
const (
	// ClusterConditionReady is True when every control plane component is healthy and a
	// workload can be applied at once (Running); while it waits for what a pod needs its
	// reason is WaitingForDefaults.
	ClusterConditionReady = "Ready"
	// ClusterConditionEtcdReady is True when the cluster's etcd answers its health check.
	ClusterConditionEtcdReady = "EtcdReady"
	// ClusterConditionAPIServerReady is True when kube-apiserver answers /readyz.
	ClusterConditionAPIServerReady = "APIServerReady"
	// ClusterConditionControllerManagerReady is True when kube-controller-manager answers /healthz.
	ClusterConditionControllerManagerReady = "ControllerManagerReady"
	// ClusterConditionSchedulerReady is True when kube-scheduler answers /healthz.
	ClusterConditionSchedulerReady = "SchedulerReady"
	// ClusterConditionDefaultsReady turns True, once and for good, when what a workload
	// needs was first seen in the new cluster (the default ServiceAccount and root CA of
	// namespace default, the permission groups aggregated); until then the cluster is not
	// Ready. kube-controller-manager keeps them after: they are not waited for again.
	ClusterConditionDefaultsReady = "DefaultsReady"
)

// Names of the Project contract.
const (
	// ProjectFinalizer keeps a Project until the platform removed its bindings (and,
	// with namespacePolicy Delete, its namespaces) from every cluster it spanned.
	ProjectFinalizer = GroupName + "/project-bindings"
	// ProjectLabel marks, with the project's name, what the platform put into a user
	// cluster for a project (its namespace, its RoleBindings) and into the tenant
	// namespace on the host (the members' Role and RoleBinding).
	ProjectLabel = GroupName + "/project"
	// ProjectUIDAnnotation, on a namespace inside a user cluster, holds the UID of the
	// Project the platform created it for: with namespacePolicy Delete, only a namespace
	// that carries its project's UID is deleted with it.
	ProjectUIDAnnotation = GroupName + "/project-uid"
	// ProjectConditionReady is True when the project's namespace and bindings are in
	// place in every cluster it spans.
	ProjectConditionReady = "Ready"
)

// Names of the Node contract.
const (
	// NodeFinalizer keeps a Node until its node is drained (or the drain timed out) and
	// removed from the user cluster.
	NodeFinalizer = GroupName + "/drain"
	// NodeUIDAnnotation, on a node inside a user cluster, holds the UID of the Node it
	// was made for: the platform changes and deletes only nodes that carry it.
	NodeUIDAnnotation = GroupName + "/node-uid"
	// DefaultNodeDrainTimeout is how long a drain waits when neither the Node nor its
	// Cluster says.
	DefaultNodeDrainTimeout = 5 * time.Minute
	// GPUResourceName is the extended resource a GPU node offers (as the NVIDIA device
	// plugin names it): pods ask for it in their resource limits.
	GPUResourceName = "nvidia.com/gpu"
	// GPUProductLabel carries a GPU node's model, as NVIDIA's GPU feature discovery
	// labels nodes, so that pods can choose a model with a node selector.
	GPUProductLabel = "nvidia.com/gpu.product"
	// GPUCountLabel carries the number of GPUs of a GPU node.
	GPUCountLabel = "nvidia.com/gpu.count"
)

// Names of the Plugin contract.
const (
	// PluginFinalizer keeps a Plugin until the objects it applied into its cluster are
	// removed (or its cluster goes, taking them along).
	PluginFinalizer = GroupName + "/plugin-objects"
	// PluginLabel marks, with the Plugin's name, every object a Plugin applied into its
	// user cluster: the platform changes and removes only objects that carry it.
	PluginLabel = GroupName + "/plugin"
	// PluginClusterUIDAnnotation, on a Plugin, holds the UID of the cluster its objects
	// were applied to: a cluster deleted and made again under the same name is another
	// one, and a Plugin of the old one never touches it.
	PluginClusterUIDAnnotation = GroupName + "/cluster-uid"
	// PluginFieldManager owns the fields the platform sets on a Plugin's objects; fields
	// it does not set (a Deployment's replicas under an autoscaler) stay the tenant's.
	PluginFieldManager = "containerservice-plugins"
	// PluginConditionApplied is True when every object of the add-on was applied.
	PluginConditionApplied = "Applied"
	// PluginConditionReady is True when every applied object is Current (kstatus).
	PluginConditionReady = "Ready"
	// PluginConditionProgressing is True while objects of the add-on are still being
	// applied or rolled out; its message names them.
	PluginConditionProgressing = "Progressing"
	// PluginConditionDegraded is True when an object of the add-on failed (kstatus
	// Failed) or one the add-on needs cannot be applied; its message names them.
	PluginConditionDegraded = "Degraded"
	// PluginDriftRepairedReason is the reason of the Event recorded when an object of an
	// add-on, deleted or changed inside the user cluster, is put back.
	PluginDriftRepairedReason = "DriftRepaired"

	// CSIDriverName is the csi add-on's driver: its CSIDriver object, its StorageClass's
	// provisioner, and the driver its volumes name.
	CSIDriverName = "local.csi." + GroupName
	// CSIStorageClassName is the csi add-on's StorageClass.
	CSIStorageClassName = "ucs-local"
)
