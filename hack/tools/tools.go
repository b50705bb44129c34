//go:build tools

// Package tools pins the Kubernetes and etcd commands that hack/build-kube-binaries.sh
// builds, so that go.sum records every module they need.
//
// Other tools go elsewhere when their requirements would raise the modules these
// commands are built with: controller-gen and the Prometheus Operator's API packages are
// pinned in hack/tools/crdgen, a module of its own (its tools.go says why).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
