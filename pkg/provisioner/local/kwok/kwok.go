// Package kwok holds what the local driver gives kwok, the kubelet stand-in that keeps a
// user cluster's nodes Ready and its pods Running without running containers.
package kwok

import _ "embed"

// Stages is a kwok configuration of Stage objects, kwok's lifecycle rules: a node it
// manages becomes Ready with the address and kubelet endpoint of that kwok (so that the
// user kube-apiserver's exec, logs and port-forward reach it) and keeps a lease; a pod
// bound to such a node becomes Running with an IP; a pod being deleted goes.
//
//go:embed stages.yaml
var Stages []byte
