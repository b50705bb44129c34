package catalog

// Types of the catalog the platform itself acts on, beyond applying their objects.
const (
	// CSI is the storage add-on: the platform runs its volume provisioner, and other
	// add-ons' claims use its StorageClass.
	CSI = "csi"
)
