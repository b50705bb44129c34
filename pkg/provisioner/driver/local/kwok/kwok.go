// Package kwok holds what the local driver gives kwok, the kubelet stand-in that keeps a
// user cluster's nodes Ready and its pods Running without running containers.
package kwok

import (
	"crypto/sha256"
	_ "embed" // the configuration's files
	"encoding/hex"
)

// options is kwok's KwokConfiguration: debugging and profiling handlers off.
//
//go:embed options.yaml
var options []byte

// Stages is a kwok configuration of Stage objects, kwok's lifecycle rules: a node it
// manages becomes Ready with the address and kubelet endpoint of that kwok and keeps a
// lease; a pod bound to such a node becomes Running with an IP; a pod being deleted goes.
//
//go:embed stages.yaml
var Stages []byte

// Config is the whole file kwok is given with --config: its options, then its stages.
var Config = append(append([]byte{}, options...), Stages...)

// Digest identifies Config: it changes whenever the configuration does.
func Digest() string {
	sum := sha256.Sum256(Config)
	return hex.EncodeToString(sum[:8])
}
