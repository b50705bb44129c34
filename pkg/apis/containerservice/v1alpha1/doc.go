// +k8s:openapi-gen=true
// +k8s:deepcopy-gen=package
// +k8s:conversion-gen=github.com/ucloudstack/containerservice/pkg/apis/containerservice
// +k8s:defaulter-gen=TypeMeta
// +groupName=containerservice.ucloudstack.io
// +k8s:openapi-model-package=io.ucloudstack.containerservice.v1alpha1

// Package v1alpha1 is the v1alpha1 version of the containerservice.ucloudstack.io API:
// Clusters, Nodes, Plugins and Projects of a tenant (a namespace of the management plane).
package v1alpha1
