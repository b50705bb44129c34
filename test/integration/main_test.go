// Package integration tests containerservice-apiserver as users reach it: through a real
// kube-apiserver's aggregator, on real etcd, with the generated clientset and the real
// kubectl. TestMain starts one stack for the package and stops it at the end.
package integration

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/test/framework"
)

// The OIDC provider user kubeconfigs name; nothing logs in with it in these tests.
const (
	oidcIssuer = "https://issuer.example.com"
	oidcClient = "containerservice"
)

var env *framework.Env

func TestMain(m *testing.M) {
	// These tests are about the API: clusters stay Pending, nothing is provisioned
	// (test/e2e runs the provisioner).
	os.Exit(framework.Main(m, stack.Config{ServerArgs: []string{
		"--provisioner=none", "--oidc-issuer-url=" + oidcIssuer, "--oidc-client-id=" + oidcClient}}, &env))
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
