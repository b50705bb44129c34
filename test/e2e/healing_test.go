package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/pkg/provisioner/driver/local"
)

// TestKilledComponentIsRestarted kills a cluster's kube-apiserver: the status must show
// the outage, and the supervisor must bring it back.
func TestKilledComponentIsRestarted(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	ns := env.NewTenant(t)
	provision(ctx, t, ns, "heal")

	pid := pidOf(t, ns, "heal", "kube-apiserver")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(ctx, t, ns, "heal", "APIServerReady", metav1.ConditionFalse)
	if c.Status.Phase == "Running" || !hasCondition(c, "Ready", metav1.ConditionFalse) {
		t.Errorf("outage not shown: phase %s, conditions %v", c.Status.Phase, c.Status.Conditions)
	}
	waitCondition(ctx, t, ns, "heal", "Ready", metav1.ConditionTrue)
	if again := pidOf(t, ns, "heal", "kube-apiserver"); again == pid {
		t.Errorf("kube-apiserver still has pid %d", pid)
	}
}

// traffic is a stream of requests, each one counted: a failure is recorded with its time.
type traffic struct {
	mu       sync.Mutex
	ok       int
	failures []string
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// halt stops the requests and waits for the last one; it may be called again.
func (tr *traffic) halt() {
	tr.stopOnce.Do(func() { close(tr.stop) })
	<-tr.done
}

// startLoop calls request every period until finish (or halt).
func startLoop(period time.Duration, request func(i int) error) *traffic {
	tr := &traffic{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
			}
			err := request(i)
			tr.mu.Lock()
			if err != nil {
				tr.failures = append(tr.failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
			} else {
				tr.ok++
			}
			tr.mu.Unlock()
		}
	}()
	return tr
}

// startTraffic is a tenant using its cluster: a ConfigMap created and read every 50 ms.
func startTraffic(ctx context.Context, client kubernetes.Interface) *traffic {
	return startLoop(50*time.Millisecond, func(i int) error {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("req-%d", i)}}
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := client.CoreV1().ConfigMaps("default").Create(reqCtx, cm, metav1.CreateOptions{})
		if err == nil {
			_, err = client.CoreV1().ConfigMaps("default").Get(reqCtx, cm.Name, metav1.GetOptions{})
		}
		return err
	})
}

func (tr *traffic) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.ok
}

func (tr *traffic) finish(t *testing.T) {
	t.Helper()
	tr.halt()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.failures) > 0 || tr.ok == 0 {
		t.Errorf("%d of %d requests to the user cluster failed: %v", len(tr.failures), tr.ok+len(tr.failures), tr.failures)
	}
}

// TestServerRestartIsNoOutage stops containerservice-apiserver gracefully, then kills it
// with SIGKILL and lets the stack restart it, while a tenant sends requests to its
// cluster: no request fails, every component keeps its pid, and the restarted server
// supervises the control plane again (a component killed afterwards comes back).
func TestServerRestartIsNoOutage(t *testing.T) {
	ctx := testContext(t, 6*time.Minute)
	ns := env.NewTenant(t)
	provision(ctx, t, ns, "steady")
	_, cfg := adminKubeconfig(ctx, t, env.CS, ns, "steady", 3600)
	before := env.ClusterProcesses(ns, "steady")
	if len(before) != 5 {
		t.Fatalf("control plane processes %v, want five (the front included)", before)
	}
	samePids := func(when string) {
		t.Helper()
		if now := env.ClusterProcesses(ns, "steady"); !equalPids(now, before) {
			t.Errorf("%s: control plane processes %v, want the same as before %v", when, now, before)
		}
	}
	tr := startTraffic(ctx, kubernetes.NewForConfigOrDie(cfg))

	// An operator's restart (an upgrade): SIGTERM, then start.
	env.StopServer()
	down := tr.count()
	eventually(ctx, t, "requests succeed while the server is down", func() (bool, error) { return tr.count() >= down+10, nil })
	samePids("server stopped")
	if err := env.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	samePids("server started again")

	// A crash: SIGKILL; the stack restarts the server, which adopts the control plane.
	pid := env.ServerPid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	down = tr.count()
	eventually(ctx, t, "the stack restarts the killed server", func() (bool, error) {
		return env.ServerPid() != 0 && env.ServerPid() != pid, nil
	})
	if err := env.WaitForServer(ctx); err != nil {
		t.Fatal(err)
	}
	if tr.count() <= down {
		t.Errorf("no request completed across the crash")
	}
	samePids("server killed and restarted")

	// The new server watches over the adopted processes.
	scheduler := pidOf(t, ns, "steady", "kube-scheduler")
	if err := syscall.Kill(scheduler, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the adopted kube-scheduler is restarted by the new server", func() (bool, error) {
		for p, b := range env.ClusterProcesses(ns, "steady") {
			if b == "kube-scheduler" && p != scheduler {
				return true, nil
			}
		}
		return false, nil
	})
	waitCondition(ctx, t, ns, "steady", "Ready", metav1.ConditionTrue)
	tr.finish(t)
	t.Logf("%d requests to the user cluster, none failed", tr.count())
}

func equalPids(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for pid, bin := range a {
		if b[pid] != bin {
			return false
		}
	}
	return true
}

// TestRebootKeepsClusters stops the server and every control plane, as a reboot of the
// machine would: each cluster must come back with what was stored inside it. A port taken
// meanwhile makes the cluster unhealthy with a message that says so, and it recovers once
// the port is free.
func TestRebootKeepsClusters(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	provision(ctx, t, ns, "keep")
	_, cfg := adminKubeconfig(ctx, t, env.CS, ns, "keep", 3600)
	inside := kubernetes.NewForConfigOrDie(cfg)
	if _, err := inside.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "survivor"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	env.StopServer()
	env.StopUserClusters()
	if procs := env.ClusterProcesses(ns, "keep"); len(procs) != 0 {
		t.Errorf("control plane processes left after the reboot: %v", procs)
	}
	// Someone else takes the cluster's kube-apiserver port while the machine boots.
	port := clusterPorts(t, ns, "keep")["apiserver"]
	squatter, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		out, _ := exec.Command("ss", "-tanp").CombinedOutput()
		t.Fatalf("take port %d: %v\n%s", port, err, out)
	}
	defer squatter.Close()
	if err := env.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the condition names the port clash", func() (bool, error) {
		c, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "keep", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range c.Status.Conditions {
			if cond.Type == "APIServerReady" && cond.Status == metav1.ConditionFalse && strings.Contains(cond.Message, "address already in use") {
				return true, nil
			}
		}
		return false, nil
	})
	squatter.Close()
	waitCondition(ctx, t, ns, "keep", "Ready", metav1.ConditionTrue)

	eventually(ctx, t, "the ConfigMap is still there", func() (bool, error) {
		cm, err := inside.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{})
		return err == nil && cm.Data["k"] == "v", err
	})
}

func pidOf(t *testing.T, ns, name, binary string) int {
	t.Helper()
	for pid, b := range env.ClusterProcesses(ns, name) {
		if b == binary {
			return pid
		}
	}
	t.Fatalf("no %s process for %s/%s", binary, ns, name)
	return 0
}

// TestEtcdThatWillNotStart breaks a cluster's etcd data while it is down: the status
// must say etcd does not start and why, and the cluster must recover by itself once the
// data is restored.
func TestEtcdThatWillNotStart(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	provision(ctx, t, ns, "broken")

	env.StopServer()
	local.StopControlPlane(env.ClusterDir(ns, "broken"))
	db := filepath.Join(env.ClusterDir(ns, "broken"), "etcd", "member", "snap", "db")
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, []byte("this is not a bbolt database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "EtcdReady explains that etcd exits", func() (bool, error) {
		c, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "broken", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range c.Status.Conditions {
			if cond.Type == "EtcdReady" && cond.Status == metav1.ConditionFalse && strings.Contains(cond.Message, "etcd exited") {
				return c.Status.Phase != "Running" && hasCondition(c, "Ready", metav1.ConditionFalse), nil
			}
		}
		return false, nil
	})

	if err := os.WriteFile(db, good, 0o600); err != nil {
		t.Fatal(err)
	}
	waitCondition(ctx, t, ns, "broken", "Ready", metav1.ConditionTrue)
}
