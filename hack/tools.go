//go:build tools

// Package tools records the code generators hack/update-codegen.sh runs, so that go.mod
// pins their version.
package tools

import _ "k8s.io/code-generator"
