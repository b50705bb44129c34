package containerservice

// DefaultKubernetesVersion is the version a Cluster gets when its spec names none.
const DefaultKubernetesVersion = "v1.37.1"

// SupportedKubernetesVersions are the control plane versions the drivers can run: the
// ones hack/kube-binaries.sh builds.
var SupportedKubernetesVersions = []string{DefaultKubernetesVersion}

// PluginTypes is the built-in catalog of add-ons a Plugin may name.
var PluginTypes = []string{
	"metrics-server",
	"monitoring",
	"logging",
	"gpu-device-plugin",
	"csi",
	"ingress",
}
