# containerservice: `make run` starts the whole system locally, `make test` runs every test.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
OUTPUT    := _output
BIN       := $(OUTPUT)/bin
STATE_DIR ?= $(OUTPUT)/local

.PHONY: all build kube-binaries generate verify test test-unit test-integration test-e2e run bench clean

all: build

## build: the containerservice binaries, into _output/bin (and kubectl-oidc_login, the credential plugin user kubeconfigs name)
build:
	$(GO) build -o $(BIN)/ ./cmd/containerservice-apiserver ./cmd/containerservice-local ./cmd/containerservice-oidc ./cmd/containerservice-front
	ln -sf containerservice-oidc $(BIN)/kubectl-oidc_login

## kube-binaries: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok, once, into ~/.cache/containerservice
kube-binaries:
	@hack/kube-binaries.sh >/dev/null

## generate: regenerate deepcopy, conversion, defaults, OpenAPI, clientset, listers, informers, apply configurations, and the monitoring add-on's CRDs
generate:
	hack/update-codegen.sh

## verify: generated code is current, gofmt and go vet are clean
verify:
	hack/verify-codegen.sh
	@unformatted=$$(gofmt -l cmd pkg test hack artifacts | grep -v '/generated/\|zz_generated' || true); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted" >&2; exit 1; fi
	$(GO) vet ./...

## test: everything CI runs: verify, unit tests, integration and end-to-end tests against real etcd, kube-apiserver and kubectl
test: verify test-unit test-integration test-e2e

## test-unit: validation, strategies, tables, round trips, supervisor, driver and controllers, with the race detector
test-unit:
	$(GO) test -race -count=1 ./pkg/... ./cmd/... ./test/layout/...

## test-integration: the server behind a real kube-apiserver's aggregator, driven by the clientset and kubectl
test-integration:
	CONTAINERSERVICE_BIN_DIR="$$(hack/kube-binaries.sh)" $(GO) test -count=1 -timeout 20m ./test/integration/...

## test-e2e: real user clusters provisioned by the local driver, checked with kubectl, process tables, ports and directories
test-e2e:
	CONTAINERSERVICE_BIN_DIR="$$(hack/kube-binaries.sh)" $(GO) test -count=1 -timeout 30m ./test/e2e/...

## run: build everything, start host etcd + kube-apiserver + containerservice-apiserver (embedded etcd), print how to reach it
run: build
	$(BIN)/containerservice-local --bin-dir "$$(hack/kube-binaries.sh)" --server $(BIN)/containerservice-apiserver --state-dir $(STATE_DIR)

## bench: our server against the same shape served as a CRD by the same kube-apiserver on the same etcd
bench: build
	CONTAINERSERVICE_BIN_DIR="$$(hack/kube-binaries.sh)" $(GO) test -count=1 -timeout 60m -run '^$$' -bench . -benchtime 1x ./test/bench/...

## clean: remove build output and the local stack's state (the kube binary cache is kept)
clean:
	rm -rf $(OUTPUT)
