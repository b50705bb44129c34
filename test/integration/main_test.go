// Package integration tests containerservice-apiserver as users reach it: through a real
// kube-apiserver's aggregator, on real etcd, with the generated clientset and the real
// kubectl. TestMain starts one stack for the package and stops it at the end.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
)

var (
	env  *stack.Stack
	kube kubernetes.Interface
	cs   versioned.Interface
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bin, err := kubeBinaries(ctx, root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "containerservice-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	server := filepath.Join(tmp, "containerservice-apiserver")
	build := exec.CommandContext(ctx, "go", "build", "-o", server, "./cmd/containerservice-apiserver")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build containerservice-apiserver: %v\n", err)
		return 1
	}

	env, err = stack.Start(ctx, stack.Config{BinDir: bin, ServerBinary: server, StateDir: filepath.Join(tmp, "state"), Progress: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "start the stack: %v\n", err)
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

// kubeBinaries returns CONTAINERSERVICE_BIN_DIR, or builds (once, cached) the binaries
// with the project's own script and returns their directory.
func kubeBinaries(ctx context.Context, root string) (string, error) {
	if dir := os.Getenv("CONTAINERSERVICE_BIN_DIR"); dir != "" {
		return dir, nil
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "kube-binaries.sh"))
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/kube-binaries.sh: %w", err)
	}
	return strings.TrimSpace(out.String()), nil
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
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
