#!/usr/bin/env bash
# Regenerates everything under pkg/generated and the zz_generated files of pkg/apis with
# k8s.io/code-generator's kube_codegen.sh, at the version go.mod pins, and the monitoring
# add-on's CRDs (hack/update-monitoring-crds.sh), so that hack/verify-codegen.sh finds
# either stale.
set -o errexit -o nounset -o pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# `go mod download -json` fetches the module when the cache lacks it (a fresh machine)
# and prints its directory; `go list -m -f '{{.Dir}}'` would print nothing there.
if ! download=$(go mod download -json k8s.io/code-generator); then
  echo "update-codegen: cannot download k8s.io/code-generator: ${download}" >&2
  exit 1
fi
codegen_pkg=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"${download}")
if [ ! -f "${codegen_pkg}/kube_codegen.sh" ]; then
  echo "update-codegen: k8s.io/code-generator not found in: ${download}" >&2
  exit 1
fi
# shellcheck source=/dev/null
source "${codegen_pkg}/kube_codegen.sh"

module=github.com/ucloudstack/containerservice
boilerplate="${root}/hack/boilerplate.go.txt"

kube::codegen::gen_helpers --boilerplate "$boilerplate" "${root}/pkg/apis"

kube::codegen::gen_openapi \
  --output-dir "${root}/pkg/generated/openapi" \
  --output-pkg "${module}/pkg/generated/openapi" \
  --output-model-name-file zz_generated.model_name.go \
  --report-filename "${root}/hack/api-rule-violations.list" \
  --update-report \
  --boilerplate "$boilerplate" \
  "${root}/pkg/apis"

kube::codegen::gen_client \
  --with-watch \
  --with-applyconfig \
  --applyconfig-openapi-schema <(go run "${module}/pkg/generated/openapi/cmd/models-schema") \
  --output-dir "${root}/pkg/generated" \
  --output-pkg "${module}/pkg/generated" \
  --boilerplate "$boilerplate" \
  "${root}/pkg/apis"

"${root}/hack/update-monitoring-crds.sh"
