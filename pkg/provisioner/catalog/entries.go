package catalog

import "regexp"

// imagePattern is a container image reference: registry, path, tag and digest characters.
var imagePattern = regexp.MustCompile(`^[a-z0-9]([a-zA-Z0-9./_:@-]*[a-zA-Z0-9])?$`)

func bound(n int64) *int64 { return &n }

// entries is the catalog. A type is listed only when the platform makes it real; a type
// taken out stays readable and deletable on Plugins stored before (admission refuses it
// on new ones only).
var entries = []Entry{
	{
		Type:        "csi",
		Description: "Storage: a CSIDriver, a StorageClass and a volume provisioner on the management side that gives every claim of the class a volume.",
		Versions: []Version{{
			Version: "1.0.0",
			Settings: []Setting{
				{Name: "default", Kind: Bool, Default: "false", Description: "Make the StorageClass the cluster's default class."},
				{Name: "reclaimPolicy", Kind: Enum, Values: []string{"Delete", "Retain"}, Default: "Delete", Description: "What happens to a volume when its claim is deleted."},
				{Name: "volumeBindingMode", Kind: Enum, Values: []string{"WaitForFirstConsumer", "Immediate"}, Default: "WaitForFirstConsumer", Description: "Provision when the first pod is scheduled (on its node), or at once."},
			},
		}},
	},
	{
		Type:        "gpu-device-plugin",
		Description: "The NVIDIA device plugin DaemonSet, on the GPU nodes only.",
		Versions: []Version{{
			Version: "0.17.0",
			Settings: []Setting{
				{Name: "image", Kind: String, Pattern: imagePattern, Default: "nvcr.io/nvidia/k8s-device-plugin:v0.17.0", Description: "The device plugin's image."},
			},
		}},
	},
	{
		Type:        "monitoring",
		Description: "The Prometheus Operator and its CRDs, a Prometheus and an Alertmanager, kube-state-metrics, node-exporter and their ServiceMonitors.",
		Versions: []Version{{
			Version: "0.95.2",
			Settings: []Setting{
				{Name: "retention", Kind: Duration, Default: "15d", Description: "How long Prometheus keeps samples."},
				{Name: "storageSize", Kind: Quantity, Min: bound(1 << 30), Default: "10Gi", Description: "Prometheus' volume (of the csi class when that plugin is enabled)."},
				{Name: "replicas", Kind: Int, Min: bound(1), Max: bound(3), Default: "1", Description: "Prometheus and Alertmanager replicas."},
			},
		}},
	},
}
