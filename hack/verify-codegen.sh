#!/usr/bin/env bash
# Fails when generated code is stale: regenerates into a scratch copy of the tree and
# compares, so the working tree is never touched.
set -o errexit -o nounset -o pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

tar -C "$root" --exclude=./_output --exclude=./.git -cf - . | tar -C "$scratch" -xf -
"${scratch}/hack/update-codegen.sh" >/dev/null

status=0
for dir in pkg hack/api-rule-violations.list; do
  diff -Naur "${root}/${dir}" "${scratch}/${dir}" || status=$?
done
if [ "$status" -ne 0 ]; then
  echo "generated code is stale: run hack/update-codegen.sh" >&2
  exit 1
fi
echo "generated code is up to date"
