//go:build tools

// Package crdgen pins what hack/update-monitoring-crds.sh runs: controller-gen, and the
// Prometheus Operator API packages it generates the monitoring add-on's CRDs from.
//
// It is a module of its own, not a part of hack/tools, because the API packages require
// newer k8s.io/utils, kube-openapi, golang.org/x/* and others than k8s.io/kubernetes
// v1.37.1 does: in hack/tools minimal version selection would raise them under the
// kube-apiserver, kube-controller-manager, kube-scheduler and kubectl that
// hack/kube-binaries.sh builds from there, so those would no longer be built as released
// (and the binary cache, keyed by version only, would not notice).
package crdgen

import (
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
