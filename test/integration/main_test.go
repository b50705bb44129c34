// Package integration tests containerservice-apiserver as users reach it: through a real
// kube-apiserver's aggregator, on real etcd, with the generated clientset and the real
// kubectl. TestMain starts one stack for the package and stops it at the end.
package integration

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	"github.com/ucloudstack/containerservice/test/framework"
)

// The OIDC provider user kubeconfigs name; nothing logs in with it in these tests.
const (
	oidcIssuer = "https://issuer.example.com"
	oidcClient = "containerservice"
)

var (
	env  *framework.Env
	kube kubernetes.Interface
	cs   versioned.Interface
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var err error
	// These tests are about the API: clusters stay Pending, nothing is provisioned
	// (test/e2e runs the provisioner).
	env, err = framework.Start(ctx, stack.Config{Progress: os.Stderr, ServerArgs: []string{
		"--provisioner=none", "--oidc-issuer-url=" + oidcIssuer, "--oidc-client-id=" + oidcClient}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer env.Stop()
	if kube, err = kubernetes.NewForConfig(env.AdminConfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if cs, err = versioned.NewForConfig(env.AdminConfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// newTenant creates a namespace of the host (a tenant) for one test and deletes it after.
func newTenant(t *testing.T) string {
	t.Helper()
	name := "t-" + rand.String(6)
	_, err := kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create tenant namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
