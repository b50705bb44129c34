package v1alpha1

import (
	"net"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

// Default address ranges, the ones kubeadm and kind use, so that a cluster created with
// no network section looks like any other Kubernetes cluster.
const (
	DefaultPodCIDRv4     = "10.244.0.0/16"
	DefaultServiceCIDRv4 = "10.96.0.0/12"
	DefaultPodCIDRv6     = "fd00:10:244::/56"
	DefaultServiceCIDRv6 = "fd00:10:96::/108"
)

// Default node size when the tenant names none.
var (
	DefaultNodeCPU    = resource.MustParse("4")
	DefaultNodeMemory = resource.MustParse("8Gi")
)

// DefaultNodePods is how many pods a node runs when the tenant names no number, the
// kubelet's own default.
const DefaultNodePods = 110

func addDefaultingFuncs(scheme *runtime.Scheme) error {
	return RegisterDefaults(scheme)
}

// SetDefaults_ClusterSpec fills in the version, control plane size and network.
func SetDefaults_ClusterSpec(spec *ClusterSpec) {
	if spec.Version == "" {
		spec.Version = containerservice.DefaultKubernetesVersion
	}
	if spec.ControlPlane.Replicas == 0 {
		spec.ControlPlane.Replicas = 1
	}
	setDefaultsClusterNetwork(&spec.Network)
}

// setDefaultsClusterNetwork derives the families from the CIDRs the tenant gave (or IPv4),
// then fills in a default range for each family that has none. Ranges that do not match
// their family are left for validation to report.
func setDefaultsClusterNetwork(n *ClusterNetwork) {
	if len(n.IPFamilies) == 0 {
		given := n.PodCIDRs
		if len(given) == 0 {
			given = n.ServiceCIDRs
		}
		for _, c := range given {
			n.IPFamilies = append(n.IPFamilies, familyOf(c))
		}
		if len(n.IPFamilies) == 0 {
			n.IPFamilies = []IPFamily{IPv4}
		}
	}
	if len(n.PodCIDRs) == 0 {
		n.PodCIDRs = defaultCIDRs(n.IPFamilies, DefaultPodCIDRv4, DefaultPodCIDRv6)
	}
	if len(n.ServiceCIDRs) == 0 {
		n.ServiceCIDRs = defaultCIDRs(n.IPFamilies, DefaultServiceCIDRv4, DefaultServiceCIDRv6)
	}
}

func familyOf(cidr string) IPFamily {
	ip, _, err := net.ParseCIDR(cidr)
	if err == nil && ip.To4() == nil {
		return IPv6
	}
	return IPv4
}

func defaultCIDRs(families []IPFamily, v4, v6 string) []string {
	out := make([]string, 0, len(families))
	for _, f := range families {
		if f == IPv6 {
			out = append(out, v6)
		} else {
			out = append(out, v4)
		}
	}
	return out
}

// SetDefaults_NodeSpec gives a node the default size when none is asked for.
func SetDefaults_NodeSpec(spec *NodeSpec) {
	if spec.Resources.CPU.IsZero() {
		spec.Resources.CPU = DefaultNodeCPU.DeepCopy()
	}
	if spec.Resources.Memory.IsZero() {
		spec.Resources.Memory = DefaultNodeMemory.DeepCopy()
	}
	if spec.Resources.Pods == 0 {
		spec.Resources.Pods = DefaultNodePods
	}
}

// SetDefaults_PluginSpec enables a plugin unless the tenant says otherwise.
func SetDefaults_PluginSpec(spec *PluginSpec) {
	if spec.Enabled == nil {
		enabled := true
		spec.Enabled = &enabled
	}
}

// Default lifetime and endpoint of an admin kubeconfig.
const DefaultAdminKubeconfigSeconds = 3600

// SetDefaults_AdminKubeconfigRequestSpec gives an admin kubeconfig an hour on the external endpoint.
func SetDefaults_AdminKubeconfigRequestSpec(spec *AdminKubeconfigRequestSpec) {
	if spec.ExpirationSeconds == nil {
		seconds := int64(DefaultAdminKubeconfigSeconds)
		spec.ExpirationSeconds = &seconds
	}
	if spec.Endpoint == "" {
		spec.Endpoint = EndpointExternal
	}
}

// SetDefaults_ProjectSpec keeps a project's namespaces when it leaves a cluster, unless
// the tenant asks for their deletion.
func SetDefaults_ProjectSpec(spec *ProjectSpec) {
	if spec.NamespacePolicy == "" {
		spec.NamespacePolicy = ProjectNamespaceRetain
	}
}
