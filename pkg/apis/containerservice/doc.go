// +k8s:deepcopy-gen=package
// +groupName=containerservice.ucloudstack.io

// Package containerservice is the internal version of the containerservice.ucloudstack.io
// API: the form the registry validates and stores through, converted to and from each
// served version.
package containerservice
