#!/usr/bin/env bash
# Regenerates the monitoring add-on's CRDs (pkg/provisioner/catalog/manifests/monitoring/
# <version>/crds) from the Prometheus Operator's API packages with controller-gen, both at
# the versions hack/tools/crdgen/go.mod pins. The CRDs are never written by hand: a new
# operator version is a new pin there and a run of this script.
#
# The options are the ones the Prometheus Operator generates its own bundle with
# (its Makefile's generate-crds: CRD_OPTIONS "crd:crdVersions=v1" over ./v1 and
# ./v1alpha1): v1beta1 is left out as upstream leaves it out of the default bundle,
# since serving it needs the conversion webhook. Descriptions are kept whole (kubectl
# explain): the largest CRD, prometheuses, is about 0.5 MiB as JSON, well under etcd's
# 1.5 MiB request limit, and server-side apply is used, so no last-applied annotation
# doubles it.
set -o errexit -o nounset -o pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=0.95.2
api=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
out="${root}/pkg/provisioner/catalog/manifests/monitoring/${version}/crds"

pinned=$(cd "${root}/hack/tools/crdgen" && go list -m -f '{{.Version}}' "${api}")
if [ "$pinned" != "v${version}" ]; then
  echo "update-monitoring-crds: hack/tools/crdgen pins ${api} ${pinned}, the catalog's version is ${version}" >&2
  exit 1
fi

# Generated aside and swapped in whole, so a CRD upstream dropped does not linger and a
# failed run leaves the old ones.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "${root}/hack/tools/crdgen" && go run sigs.k8s.io/controller-tools/cmd/controller-gen \
  crd:crdVersions=v1 \
  paths="${api}/v1" paths="${api}/v1alpha1" \
  output:crd:dir="${scratch}/crds")
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "${scratch}/crds" "$out"
