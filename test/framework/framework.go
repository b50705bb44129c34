// Package framework starts the local stack for the integration tests and benchmarks: it
// finds (or builds, once) the kube binaries, builds containerservice-apiserver from this
// tree, and gives the stack a fresh state directory that is removed afterwards.
package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
)

// Env is a running stack and what to clean up after it.
type Env struct {
	*stack.Stack
	// Root is the repository's top directory.
	Root string
	// Kube and CS are the host administrator's clients: core and containerservice.
	Kube kubernetes.Interface
	CS   versioned.Interface
	tmp  string
	// lifeline is held open while the tests run; the watchdog cleans up when it closes.
	lifeline *os.File
}

// Main is a test package's TestMain: it starts a stack with cfg, stores it in *env, runs
// the tests, prints the end of the server's log when one failed, stops the stack and
// returns the exit code.
func Main(m *testing.M, cfg stack.Config, env **Env) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if cfg.Progress == nil {
		cfg.Progress = os.Stderr
	}
	e, err := Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer e.Stop()
	*env = e
	code := m.Run()
	if code != 0 {
		if log, err := os.ReadFile(e.ServerLog()); err == nil {
			const tail = 8000
			if len(log) > tail {
				log = log[len(log)-tail:]
			}
			fmt.Fprintf(os.Stderr, "--- end of containerservice-apiserver log:\n%s\n", log)
		}
	}
	return code
}

// NewTenant creates a namespace of the host (a tenant) for one test.
func (e *Env) NewTenant(t testing.TB) string {
	t.Helper()
	name := "t-" + rand.String(6)
	_, err := e.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create tenant namespace: %v", err)
	}
	return name
}

// Start brings up a stack with cfg (BinDir, ServerBinary and StateDir are filled in).
func Start(ctx context.Context, cfg stack.Config) (*Env, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if cfg.BinDir, err = kubeBinaries(ctx, root); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "containerservice-test-")
	if err != nil {
		return nil, err
	}
	lifeline, err := watchdog(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	// The server runs containerservice-front, built beside it, as each cluster's front.
	cfg.ServerBinary = filepath.Join(tmp, "containerservice-apiserver")
	build := exec.CommandContext(ctx, "go", "build", "-o", tmp+string(filepath.Separator), "./cmd/containerservice-apiserver", "./cmd/containerservice-front")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		lifeline.Close()
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("build containerservice-apiserver and containerservice-front: %w", err)
	}
	cfg.StateDir = filepath.Join(tmp, "state")
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		lifeline.Close()
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("start the stack: %w", err)
	}
	env := &Env{Stack: s, Root: root, tmp: tmp, lifeline: lifeline}
	if env.Kube, err = kubernetes.NewForConfig(s.AdminConfig); err == nil {
		env.CS, err = versioned.NewForConfig(s.AdminConfig)
	}
	if err != nil {
		env.Stop()
		return nil, err
	}
	return env, nil
}

// Stop stops every process and removes the state directory. With
// CONTAINERSERVICE_TEST_LOGS set to a directory, the server's log is copied there first.
func (e *Env) Stop() {
	if dir := os.Getenv("CONTAINERSERVICE_TEST_LOGS"); dir != "" {
		if data, err := os.ReadFile(e.ServerLog()); err == nil && os.MkdirAll(dir, 0o755) == nil {
			_ = os.WriteFile(filepath.Join(dir, filepath.Base(e.tmp)+"-containerservice-apiserver.log"), data, 0o644)
		}
	}
	e.Stack.Stop()
	e.lifeline.Close()
	os.RemoveAll(e.tmp)
}

// watchdog starts a process that kills everything whose command line names dir (the
// stack, and the user control planes, which outlive the server by design) once the
// returned file closes: at the end of the tests, or when the test process dies in any
// way, SIGKILL included. So a test run never leaves a process behind.
func watchdog(dir string) (*os.File, error) {
	if _, err := exec.LookPath("pkill"); err != nil {
		return nil, fmt.Errorf("the tests need pkill (Debian: procps) to never leave a process behind: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// pkill takes a regular expression: the directory is quoted, with its trailing slash
	// so that another run's directory with a longer name never matches.
	cmd := exec.Command("/bin/sh", "-c", `cat >/dev/null; pkill -KILL -f -- "$0"`, regexp.QuoteMeta(dir+"/"))
	cmd.Stdin = r
	// Its own session: a Ctrl-C of the test run must not kill it before it cleans up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start the watchdog: %w", err)
	}
	r.Close()
	go func() { _ = cmd.Wait() }()
	return w, nil
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

// ClusterDir is where the local driver keeps a cluster.
func (e *Env) ClusterDir(ns, name string) string {
	return filepath.Join(e.ServerDataDir(), "clusters", ns, name)
}

// ClusterProcesses returns the pids and binary names of the processes whose command line
// names the cluster's directory: its control plane.
func (e *Env) ClusterProcesses(ns, name string) map[int]string {
	dir := e.ClusterDir(ns, name) + string(filepath.Separator)
	procs := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		procs[pid] = filepath.Base(strings.SplitN(string(cmdline), "\x00", 2)[0])
	}
	return procs
}

// TempDir is a directory for one test inside the stack's, removed with it: a process a
// test starts with this directory on its command line is stopped by the watchdog too.
func (e *Env) TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(e.tmp, "test-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
