package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

func workerNode(ns, cluster, name string, gpus int32) *v1alpha1.Node {
	n := &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: v1alpha1.NodeSpec{ClusterName: cluster,
		Labels: map[string]string{"pool": "general"}}}
	if gpus > 0 {
		n.Spec.Resources.GPU = &v1alpha1.GPUResources{Count: gpus, Model: "nvidia-tesla-t4"}
		n.Spec.Labels["pool"] = "gpu"
	}
	return n
}

func deployment(ns, name string, replicas int32, nodeSelector map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			NodeSelector: nodeSelector,
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}},
		}}}}
}

func gpuPod(name string, gpus int64) *corev1.Pod {
	q := *resource.NewQuantity(gpus, resource.DecimalSI)
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "cuda", Image: "nvcr.io/nvidia/cuda:12.4.0-base-ubuntu22.04",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{v1alpha1.GPUResourceName: q}}}}}}
}

// podsByNode counts the running pods of an app on each node.
func podsByNode(ctx context.Context, client kubernetes.Interface, app string) (map[string]int, int, error) {
	pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, 0, err
	}
	out, running := map[string]int{}, 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out[p.Spec.NodeName]++
			running++
		}
	}
	return out, running, nil
}

func waitNodePhase(ctx context.Context, t *testing.T, ns, name string, phase v1alpha1.NodePhase) *v1alpha1.Node {
	t.Helper()
	var n *v1alpha1.Node
	eventually(ctx, t, fmt.Sprintf("node %s %s", name, phase), func() (bool, error) {
		var err error
		if n, err = env.CS.ContainerserviceV1alpha1().Nodes(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		return n.Status.Phase == phase, fmt.Errorf("phase %s, conditions %v", n.Status.Phase, n.Status.Conditions)
	})
	return n
}

func kwokPid(ns, cluster string) int {
	for pid, bin := range env.ClusterProcesses(ns, cluster) {
		if bin == "kwok" {
			return pid
		}
	}
	return 0
}

// TestWorkerNodes adds three nodes (one with GPUs) to a cluster and uses them as a tenant
// would: the node agent starts with the first node and is supervised; pods of a
// Deployment spread over the nodes and a GPU pod lands on the GPU node only, placed by the
// real kube-scheduler; edits inside the cluster are put back; cordon keeps new pods off a
// node; deleting a node whose pods a PodDisruptionBudget holds shows the budget blocking,
// survives a server restart with its deadline, and deletes the node at the deadline.
func TestWorkerNodes(t *testing.T) {
	ctx := testContext(t, 8*time.Minute)
	ns := env.NewTenant(t)
	provision(ctx, t, ns, "work")
	_, cfg := adminKubeconfig(ctx, t, env.CS, ns, "work", 3600)
	user := kubernetes.NewForConfigOrDie(cfg)
	nodes := env.CS.ContainerserviceV1alpha1().Nodes(ns)
	t.Cleanup(func() {
		if t.Failed() {
			// The node agent's own account of what went wrong.
			if log, err := os.ReadFile(filepath.Join(env.ClusterDir(ns, "work"), "logs", "kwok.log")); err == nil {
				t.Logf("node agent log (last 8 KiB):\n%s", log[max(0, len(log)-8192):])
			}
		}
	})

	t.Run("no node agent runs for a cluster without nodes", func(t *testing.T) {
		if pid := kwokPid(ns, "work"); pid != 0 {
			t.Fatalf("a node agent (pid %d) runs for a cluster without nodes", pid)
		}
	})

	var created time.Time
	if !step(t, "three nodes become Ready", func(t *testing.T) {
		created = time.Now()
		for _, n := range []*v1alpha1.Node{workerNode(ns, "work", "n1", 0), workerNode(ns, "work", "n2", 0), workerNode(ns, "work", "gpu1", 2)} {
			if _, err := nodes.Create(ctx, n, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create node %s: %v", n.Name, err)
			}
		}
		for _, name := range []string{"n1", "n2", "gpu1"} {
			waitNodePhase(ctx, t, ns, name, v1alpha1.NodeReady)
		}
	}) {
		t.FailNow()
	}

	t.Run("the cluster counts its nodes", func(t *testing.T) {
		eventually(ctx, t, "the cluster counts 3/3 nodes", func() (bool, error) {
			c, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "work", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return c.Status.Nodes == v1alpha1.NodeCounts{Ready: 3, Total: 3}, fmt.Errorf("nodes %+v", c.Status.Nodes)
		})
		out, err := env.Kubectl(ctx, nil, "get", "clusters", "-n", ns, "work")
		if err != nil || !strings.Contains(out, "3/3") {
			t.Errorf("kubectl get clusters does not show 3/3 nodes: %s (%v)", out, err)
		}
	})

	t.Run("the node detail is mirrored from the cluster", func(t *testing.T) {
		gpu, err := nodes.Get(ctx, "gpu1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if q := gpu.Status.Allocatable[v1alpha1.GPUResourceName]; q.Value() != 2 {
			t.Errorf("gpu1 allocatable %v, want 2 %s", gpu.Status.Allocatable, v1alpha1.GPUResourceName)
		}
		if gpu.Status.KubeletVersion == "" || len(gpu.Status.Addresses) == 0 {
			t.Errorf("gpu1 status lacks kubelet version or addresses: %+v", gpu.Status)
		}
		eventually(ctx, t, "kubectl describe shows the node's detail and events", func() (bool, error) {
			out, err := env.Kubectl(ctx, nil, "describe", "csnode", "-n", ns, "gpu1")
			return err == nil && strings.Contains(out, "Kubelet Version:") && strings.Contains(out, "Pod Phases:") &&
				strings.Contains(out, "NodeCreated"), fmt.Errorf("%s (%v)", out, err)
		})
		userGPU, err := user.CoreV1().Nodes().Get(ctx, "gpu1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if userGPU.Labels[v1alpha1.GPUProductLabel] != "nvidia-tesla-t4" || userGPU.Labels["pool"] != "gpu" {
			t.Errorf("gpu1 labels in the cluster %v, want the GPU product and the spec's labels", userGPU.Labels)
		}
	})

	// The node agent is supervised: killed, it comes back. Pods run, nodes stay Ready and
	// drains end only with it.
	agentBack := step(t, "a killed node agent is restarted", func(t *testing.T) {
		agent := kwokPid(ns, "work")
		if agent == 0 {
			t.Fatal("no node agent runs for a cluster with nodes")
		}
		if err := syscall.Kill(agent, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the killed node agent is restarted", func() (bool, error) {
			pid := kwokPid(ns, "work")
			return pid != 0 && pid != agent, nil
		})
	})

	// Our spec is the truth: a label and the cordon changed inside the cluster are put back.
	putBack := step(t, "edits inside the cluster are put back", func(t *testing.T) {
		if _, err := user.CoreV1().Nodes().Patch(ctx, "n1", "application/merge-patch+json",
			[]byte(`{"metadata":{"labels":{"pool":null}},"spec":{"unschedulable":true}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the label and cordon edited inside the cluster are put back", func() (bool, error) {
			n, err := user.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return n.Labels["pool"] == "general" && !n.Spec.Unschedulable, fmt.Errorf("labels %v, unschedulable %v", n.Labels, n.Spec.Unschedulable)
		})
	})

	// by is where the 20 pods of web run.
	var by map[string]int
	// Pods spread over every node only once n1 is uncordoned again.
	spread := step(t, "20 replicas spread over the nodes", func(t *testing.T) {
		needs(t, agentBack, "a running node agent")
		needs(t, putBack, "n1 uncordoned")
		if _, err := user.AppsV1().Deployments("default").Create(ctx, deployment("default", "web", 20, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "20 pods run on every node", func() (bool, error) {
			by, running, err := podsByNode(ctx, user, "web")
			return running == 20 && len(by) == 3, fmt.Errorf("running %d, by node %v (%v)", running, by, err)
		})
		by, _, _ = podsByNode(ctx, user, "web")
	})

	t.Run("node status counts its pods", func(t *testing.T) {
		needs(t, spread, "the pods of web")
		eventually(ctx, t, "node status counts its pods", func() (bool, error) {
			n, err := nodes.Get(ctx, "n1", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return int(n.Status.Pods) == by["n1"] && int(n.Status.PodPhases.Running) == by["n1"], fmt.Errorf("status %d pods (%+v), want %d", n.Status.Pods, n.Status.PodPhases, by["n1"])
		})
	})

	t.Run("the node agent gives nothing beyond playing kubelets", func(t *testing.T) {
		needs(t, spread, "the pods of web")
		web, err := user.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web", Limit: 1})
		if err != nil || len(web.Items) == 0 {
			t.Fatalf("a pod of web: %v", err)
		}
		attackNodeAgent(ctx, t, ns, "work", user, &web.Items[0])
	})

	// GPUs: one GPU lands on the GPU node; more than any node has stays Pending, saying why.
	t.Run("a GPU pod lands on the GPU node, too many GPUs stay Pending", func(t *testing.T) {
		needs(t, agentBack, "a running node agent")
		for _, p := range []*corev1.Pod{gpuPod("train", 1), gpuPod("too-big", 4)} {
			if _, err := user.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		eventually(ctx, t, "the GPU pod runs on the GPU node", func() (bool, error) {
			p, err := user.CoreV1().Pods("default").Get(ctx, "train", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return p.Status.Phase == corev1.PodRunning && p.Spec.NodeName == "gpu1", fmt.Errorf("phase %s on %q", p.Status.Phase, p.Spec.NodeName)
		})
		eventually(ctx, t, "the 4-GPU pod is unschedulable for want of GPUs", func() (bool, error) {
			p, err := user.CoreV1().Pods("default").Get(ctx, "too-big", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, "Insufficient "+v1alpha1.GPUResourceName) {
					return p.Spec.NodeName == "", nil
				}
			}
			return false, fmt.Errorf("phase %s, node %q, conditions %v", p.Status.Phase, p.Spec.NodeName, p.Status.Conditions)
		})
	})

	// The GPU device plugin: applied from the management side, its pods on the GPU node
	// only, put back when deleted inside, gone when switched off.
	t.Run("the GPU device plugin runs on the GPU node only", func(t *testing.T) {
		needs(t, agentBack, "a running node agent")
		plugins := env.CS.ContainerserviceV1alpha1().Plugins(ns)
		if _, err := plugins.Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "gpu"},
			Spec: v1alpha1.PluginSpec{ClusterName: "work", Type: "gpu-device-plugin"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the plugin is Ready", func() (bool, error) {
			p, err := plugins.Get(ctx, "gpu", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return p.Status.Phase == v1alpha1.PluginReady && p.Status.Version == "0.17.0" && len(p.Status.Applied) == 1,
				fmt.Errorf("phase %s, version %q, applied %v, conditions %v", p.Status.Phase, p.Status.Version, p.Status.Applied, p.Status.Conditions)
		})
		dsPods := func() ([]string, error) {
			pods, err := user.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "name=nvidia-device-plugin-ds"})
			if err != nil {
				return nil, err
			}
			var on []string
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil {
					on = append(on, p.Spec.NodeName)
				}
			}
			slices.Sort(on)
			return on, nil
		}
		eventually(ctx, t, "one device plugin pod, on gpu1", func() (bool, error) {
			on, err := dsPods()
			return err == nil && slices.Equal(on, []string{"gpu1"}), fmt.Errorf("pods on %v (%v)", on, err)
		})
		// A GPU node added later gets the device plugin too; a plain one does not.
		if _, err := nodes.Create(ctx, workerNode(ns, "work", "gpu2", 1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitNodePhase(ctx, t, ns, "gpu2", v1alpha1.NodeReady)
		eventually(ctx, t, "device plugin pods on gpu1 and gpu2 only", func() (bool, error) {
			on, err := dsPods()
			return err == nil && slices.Equal(on, []string{"gpu1", "gpu2"}), fmt.Errorf("pods on %v (%v)", on, err)
		})
		if err := nodes.Delete(ctx, "gpu2", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "gpu2 gone, the device plugin on gpu1 only", func() (bool, error) {
			_, gone := nodes.Get(ctx, "gpu2", metav1.GetOptions{})
			on, err := dsPods()
			return apierrors.IsNotFound(gone) && err == nil && slices.Equal(on, []string{"gpu1"}), fmt.Errorf("gpu2: %v; pods on %v (%v)", gone, on, err)
		})
		// Deleted inside the cluster: the watch sees it and the plugin puts it back within
		// seconds (2 s is the aim; the bound leaves room for a loaded CI machine).
		daemonSets := user.AppsV1().DaemonSets("kube-system")
		before, err := daemonSets.Get(ctx, "nvidia-device-plugin-daemonset", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := daemonSets.Delete(ctx, before.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deleted := time.Now()
		repairCtx, cancel := context.WithTimeout(ctx, 4*time.Second)
		defer cancel()
		eventually(repairCtx, t, "the deleted DaemonSet is put back within seconds", func() (bool, error) {
			ds, err := daemonSets.Get(ctx, before.Name, metav1.GetOptions{})
			return err == nil && ds.UID != before.UID && ds.DeletionTimestamp == nil, err
		})
		t.Logf("the DaemonSet was put back %s after its deletion", time.Since(deleted).Round(time.Millisecond))
		eventually(ctx, t, "an Event DriftRepaired names it", func() (bool, error) {
			return pluginEvent(ctx, ns, "gpu", v1alpha1.PluginDriftRepairedReason, "DaemonSet kube-system/nvidia-device-plugin-daemonset")
		})
		if _, err := plugins.Patch(ctx, "gpu", types.MergePatchType, []byte(`{"spec":{"enabled":false}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "switched off, its DaemonSet and pods are gone", func() (bool, error) {
			p, err := plugins.Get(ctx, "gpu", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			_, dsErr := daemonSets.Get(ctx, "nvidia-device-plugin-daemonset", metav1.GetOptions{})
			on, err := dsPods()
			return p.Status.Phase == v1alpha1.PluginDisabled && len(p.Status.Applied) == 0 && apierrors.IsNotFound(dsErr) && err == nil && len(on) == 0,
				fmt.Errorf("phase %s, applied %v, DaemonSet %v, pods on %v", p.Status.Phase, p.Status.Applied, dsErr, on)
		})
	})

	// Cordon: new pods go elsewhere; uncordon: the node takes pods again.
	t.Run("cordon keeps new pods off a node", func(t *testing.T) {
		needs(t, spread, "the pods of web")
		setNode(ctx, t, ns, "n1", func(n *v1alpha1.Node) { n.Spec.Unschedulable = true })
		eventually(ctx, t, "n1 is cordoned in the cluster", func() (bool, error) {
			n, err := user.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
			return err == nil && n.Spec.Unschedulable, err
		})
		if out, err := env.Kubectl(ctx, nil, "get", "csnode", "-n", ns, "n1"); err != nil || !strings.Contains(out, "SchedulingDisabled") {
			t.Errorf("kubectl get csnode does not show the cordon: %s (%v)", out, err)
		}
		scale(ctx, t, user, "web", 35)
		eventually(ctx, t, "35 pods run, the new ones off n1", func() (bool, error) {
			now, running, err := podsByNode(ctx, user, "web")
			return running == 35 && now["n1"] == by["n1"], fmt.Errorf("running %d, by node %v, n1 had %d (%v)", running, now, by["n1"], err)
		})
		setNode(ctx, t, ns, "n1", func(n *v1alpha1.Node) { n.Spec.Unschedulable = false })
		eventually(ctx, t, "n1 is uncordoned in the cluster", func() (bool, error) {
			n, err := user.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
			return err == nil && !n.Spec.Unschedulable, err
		})
	})

	// A drain held by a PodDisruptionBudget, across a server restart, ends at its deadline.
	const timeout = 40 * time.Second
	var draining *v1alpha1.Node
	var deadline time.Time
	drainBlocked := step(t, "a drain shows the budget blocking it", func(t *testing.T) {
		needs(t, agentBack, "a running node agent")
		if _, err := user.AppsV1().Deployments("default").Create(ctx, deployment("default", "guarded", 2, map[string]string{"kubernetes.io/hostname": "n2"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		minAvailable := intstr.FromInt32(2)
		if _, err := user.PolicyV1().PodDisruptionBudgets("default").Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "guarded-pdb"},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the guarded pods run and their budget allows no disruption", func() (bool, error) {
			_, running, err := podsByNode(ctx, user, "guarded")
			if err != nil || running != 2 {
				return false, err
			}
			pdb, err := user.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "guarded-pdb", metav1.GetOptions{})
			return err == nil && pdb.Status.CurrentHealthy == 2 && pdb.Status.DisruptionsAllowed == 0, err
		})
		setNode(ctx, t, ns, "n2", func(n *v1alpha1.Node) { n.Spec.DrainTimeout = &metav1.Duration{Duration: timeout} })
		if err := nodes.Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the drain shows the budget blocking", func() (bool, error) {
			var err error
			if draining, err = nodes.Get(ctx, "n2", metav1.GetOptions{}); err != nil {
				return false, err
			}
			d := draining.Status.Drain
			if d == nil || draining.Status.Phase != v1alpha1.NodeDraining {
				return false, fmt.Errorf("phase %s, drain %+v", draining.Status.Phase, d)
			}
			blocked := slices.ContainsFunc(d.BlockedBy, func(s string) bool { return strings.Contains(s, "PodDisruptionBudget guarded-pdb") })
			return blocked && d.PodsRemaining == 2, fmt.Errorf("drain %+v", d)
		})
		deadline = draining.Status.Drain.Deadline.Time
	})

	t.Run("the drain cordons the node, evicts what the budget allows and sets its deadline", func(t *testing.T) {
		needs(t, drainBlocked, "a blocked drain")
		if got := deadline.Sub(draining.Status.Drain.StartTime.Time); got != timeout {
			t.Errorf("deadline %v after the start, want %v", got, timeout)
		}
		by, _, _ := podsByNode(ctx, user, "web")
		if by["n2"] != 0 {
			t.Errorf("unguarded pods still on the draining node: %v", by)
		}
		n2Node, err := user.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
		if err != nil || !n2Node.Spec.Unschedulable {
			t.Errorf("the draining node is not cordoned: %v", err)
		}
	})

	if !step(t, "the server restarts", func(t *testing.T) {
		env.StopServer()
		if err := env.StartServer(ctx); err != nil {
			t.Fatal(err)
		}
	}) {
		t.FailNow()
	}

	t.Run("the drain keeps its deadline across the restart and ends at it", func(t *testing.T) {
		needs(t, drainBlocked, "a blocked drain")
		eventually(ctx, t, "the Node is gone after the deadline", func() (bool, error) {
			n, err := nodes.Get(ctx, "n2", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			if d := n.Status.Drain; d == nil || !d.Deadline.Time.Equal(deadline) {
				t.Fatalf("the drain's deadline changed across the restart: %+v, want %v", d, deadline)
			}
			return false, fmt.Errorf("phase %s, drain %+v", n.Status.Phase, n.Status.Drain)
		})
		if now := time.Now(); now.Before(deadline) {
			t.Errorf("the node went at %v, before its deadline %v, with pods its budget holds", now, deadline)
		}
		if _, err := user.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("node n2 still in the cluster: %v", err)
		}
	})

	// Nodes stay Ready past the controller manager's node-monitor grace period (50 s):
	// the agent keeps their leases, as kubelets do.
	t.Run("nodes stay Ready past the node-monitor grace period", func(t *testing.T) {
		needs(t, agentBack, "a running node agent")
		if wait := time.Until(created.Add(60 * time.Second)); wait > 0 {
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(wait): // the grace period is the condition here: it is a time
			}
		}
		for _, name := range []string{"n1", "gpu1"} {
			if _, err := user.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("node %s has no lease: %v", name, err)
			}
			node, err := user.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if readyOf(node) != corev1.ConditionTrue {
				t.Errorf("node %s is not Ready %s after it was added: %v", name, time.Since(created).Round(time.Second), node.Status.Conditions)
			}
		}
	})

	// The last nodes go (their pods have no budget: drained at once), and the agent with them.
	// "Every Node is gone" counts on n2, deleted by the drain step, being gone too.
	t.Run("the last nodes go, and the node agent with them", func(t *testing.T) {
		needs(t, agentBack, "a running node agent")
		needs(t, drainBlocked, "n2 deleted")
		for _, name := range []string{"n1", "gpu1"} {
			if err := nodes.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		eventually(ctx, t, "every Node is gone, the cluster counts 0/0 and the node agent stops", func() (bool, error) {
			list, err := nodes.List(ctx, metav1.ListOptions{})
			if err != nil || len(list.Items) != 0 {
				return false, fmt.Errorf("%d nodes left (%v)", len(list.Items), err)
			}
			c, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "work", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return c.Status.Nodes == v1alpha1.NodeCounts{} && kwokPid(ns, "work") == 0, fmt.Errorf("nodes %+v, agent pid %d", c.Status.Nodes, kwokPid(ns, "work"))
		})
	})
}

func setNode(ctx context.Context, t *testing.T, ns, name string, change func(*v1alpha1.Node)) {
	t.Helper()
	for {
		n, err := env.CS.ContainerserviceV1alpha1().Nodes(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		change(n)
		_, err = env.CS.ContainerserviceV1alpha1().Nodes(ns).Update(ctx, n, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
}

func scale(ctx context.Context, t *testing.T, client kubernetes.Interface, name string, replicas int32) {
	t.Helper()
	s, err := client.AppsV1().Deployments("default").GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = replicas
	if _, err := client.AppsV1().Deployments("default").UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func readyOf(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}
