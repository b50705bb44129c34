package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/pkg/provisioner/driver/local"
)

// TestAWrongEtcdDeletesNothing starts the server on an etcd that holds none of the
// Clusters (a typo in --etcd-servers, say) next to two existing clusters, one running and
// one whose processes are down: nothing is deleted, the running one keeps serving its
// tenant, the stopped one is moved whole to the quarantine and reported, and pointing the
// server back at its etcd brings both back as they were.
func TestAWrongEtcdDeletesNothing(t *testing.T) {
	ctx := testContext(t, 8*time.Minute)
	ns := env.NewTenant(t)
	warm := createReady(ctx, t, newCluster("warm", ns))
	cold := createReady(ctx, t, newCluster("cold", ns))
	t.Cleanup(func() {
		for _, n := range []string{"warm", "cold"} {
			_ = env.CS.ContainerserviceV1alpha1().Clusters(ns).Delete(context.Background(), n, metav1.DeleteOptions{})
		}
	})
	clients := map[string]kubernetes.Interface{}
	for _, name := range []string{"warm", "cold"} {
		_, cfg := adminKubeconfig(ctx, t, env.CS, ns, name, 3600)
		clients[name] = kubernetes.NewForConfigOrDie(cfg)
		if _, err := clients[name].CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "tenant-data"}, Data: map[string]string{"cluster": name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	warmPids := env.ClusterProcesses(ns, "warm")
	coldDir := env.ClusterDir(ns, "cold")

	env.StopServer()
	t.Cleanup(func() {
		// Later tests need the server on its own etcd.
		env.StopServer()
		if err := env.StartServer(context.Background()); err != nil {
			t.Errorf("restart the server: %v", err)
		}
	})
	local.StopControlPlane(coldDir)
	coldFiles := files(t, coldDir)
	if err := env.StartServer(ctx, env.HostEtcdFlags()...); err != nil {
		t.Fatal(err)
	}
	if list, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 0 {
		t.Fatalf("the wrong etcd should hold no clusters: %v %v", list, err)
	}

	quarantined := filepath.Join(env.ServerDataDir(), "quarantine", string(cold.UID))
	eventually(ctx, t, "the stopped cluster is quarantined", func() (bool, error) {
		_, err := os.Stat(quarantined)
		return err == nil, err
	})
	if _, err := os.Stat(coldDir); !os.IsNotExist(err) {
		t.Errorf("the quarantined directory is still in place: %v", err)
	}
	moved := files(t, quarantined)
	for f, sum := range coldFiles {
		if moved[f] != sum {
			t.Errorf("%s is missing from the quarantine or changed", f)
		}
	}
	if _, ok := moved["quarantine.json"]; !ok {
		t.Error("the quarantine does not say where it came from")
	}
	eventually(ctx, t, "the quarantine is reported as an Event in the tenant", func() (bool, error) {
		events, err := env.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=Quarantined,involvedObject.name=cold"})
		return err == nil && len(events.Items) == 1 && strings.Contains(events.Items[0].Message, string(cold.UID)), err
	})

	// The running cluster is left alone: same processes, its tenant still served.
	if now := env.ClusterProcesses(ns, "warm"); !equalPids(now, warmPids) {
		t.Errorf("the running cluster's processes changed: %v, were %v", now, warmPids)
	}
	if cm, err := clients["warm"].CoreV1().ConfigMaps("default").Get(ctx, "tenant-data", metav1.GetOptions{}); err != nil || cm.Data["cluster"] != "warm" {
		t.Errorf("the running cluster's data: %v %v", cm, err)
	}
	eventually(ctx, t, "the running unaccounted cluster is reported", func() (bool, error) {
		events, err := env.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=Unaccounted,involvedObject.name=warm"})
		return err == nil && len(events.Items) == 1, err
	})
	metrics := serverMetrics(ctx, t)
	for _, m := range []string{"containerservice_cluster_controller_quarantined_total", "containerservice_cluster_controller_unaccounted_running_control_planes"} {
		if v := metricValue(metrics, m); v < 1 {
			t.Errorf("metric %s is %v, want at least 1", m, v)
		}
	}

	// The right etcd again: both clusters are back, as they were.
	env.StopServer()
	if err := env.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	// cold's stored status still says Ready from before the stop until its first
	// reconcile, so wait for what restoring it does, not for the condition alone.
	eventually(ctx, t, "cold is restored from the quarantine", func() (bool, error) {
		_, err := os.Stat(quarantined)
		if os.IsNotExist(err) {
			return true, nil
		}
		return false, err
	})
	if _, err := os.Stat(coldDir); err != nil {
		t.Errorf("cold's directory is not back in place: %v", err)
	}
	waitCondition(ctx, t, ns, "cold", "Ready", metav1.ConditionTrue)
	waitCondition(ctx, t, ns, "warm", "Ready", metav1.ConditionTrue)
	if now := env.ClusterProcesses(ns, "warm"); !equalPids(now, warmPids) {
		t.Errorf("the running cluster was restarted: %v, were %v", now, warmPids)
	}
	for name, client := range clients {
		// The admin kubeconfigs of before still work: same CAs, same data.
		eventually(ctx, t, name+"'s data is back", func() (bool, error) {
			cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, "tenant-data", metav1.GetOptions{})
			return err == nil && cm.Data["cluster"] == name, err
		})
	}
	if got, _ := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "warm", metav1.GetOptions{}); got.UID != warm.UID {
		t.Errorf("warm has another UID after the restore")
	}
}

// files maps the regular files under dir, relative to it, to the SHA-256 of their content.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			out[rel] = fmt.Sprintf("%x", sha256.Sum256(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no files under %s", dir)
	}
	return out
}

// serverMetrics reads the server's /metrics directly (the aggregator does not proxy it).
func serverMetrics(ctx context.Context, t *testing.T) string {
	t.Helper()
	cfg, err := env.DirectConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data, err := client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return string(data)
}

// metricValue returns the value of an unlabelled metric in Prometheus text, or -1.
func metricValue(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}
