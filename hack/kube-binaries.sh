#!/usr/bin/env bash
# Builds the real components the project runs and tests against, once, into a cache
# outside the repository keyed by version, and prints the cache's bin directory:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes)
#   etcd                                                                (go.etcd.io/etcd/server etcdmain)
#   kwok                                                                (sigs.k8s.io/kwok)
# Everything comes through the Go module proxy; a binary already in the cache is reused.
set -euo pipefail

KUBE_VERSION=v1.37.1
ETCD_VERSION=v3.7.0   # the go.etcd.io/etcd/server version k8s.io/kubernetes ${KUBE_VERSION} pins
KWOK_VERSION=v0.8.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${CONTAINERSERVICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/containerservice}
bin="${cache_root}/kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}/bin"
mkdir -p "$bin"

major=${KUBE_VERSION#v}; major=${major%%.*}
minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
  ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
done

log() { echo "kube-binaries: $*" >&2; }

# build NAME PACKAGE: go build inside the tools module, written atomically so an
# interrupted build never leaves a half binary that a later run would trust.
build() {
  local name=$1 pkg=$2
  [ -x "${bin}/${name}" ] && return 0
  log "building ${name} (${pkg}) into ${bin}"
  (cd "${root}/hack/tools" && go build -trimpath -ldflags "${ldflags}" -o "${bin}/.${name}.tmp" "${pkg}")
  mv "${bin}/.${name}.tmp" "${bin}/${name}"
}

build etcd ./etcd
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kubectl k8s.io/kubernetes/cmd/kubectl

if [ ! -x "${bin}/kwok" ]; then
  log "building kwok ${KWOK_VERSION} into ${bin}"
  tmp=$(mktemp -d)
  GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
  mv "$tmp/kwok" "${bin}/kwok"
  rmdir "$tmp"
fi

echo "$bin"
