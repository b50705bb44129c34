package containerservice

// DefaultKubernetesVersion is the version a Cluster gets when its spec names none.
const DefaultKubernetesVersion = "v1.37.1"

// SupportedKubernetesVersions are the control plane versions the drivers can run: the
// ones hack/kube-binaries.sh builds.
var SupportedKubernetesVersions = []string{DefaultKubernetesVersion}
