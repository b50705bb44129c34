package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/drain"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	"github.com/ucloudstack/containerservice/test/framework"
)

const (
	benchNodes     = 100
	podsPerDrain   = 100
	podsForMemory  = 1000
	nodeCreateJobs = 8
)

// BenchmarkNodes measures worker nodes on the local driver (kwok as the nodes' agent):
// 100 Node objects created until all are Ready (nodes per second), against the same 100
// nodes written straight into the cluster for the same agent (the floor without our
// controller); the drain of a node running 100 pods through the Node's deletion, against
// k8s.io/kubectl/pkg/drain run directly on a twin node (cordon, evict, wait); and the
// memory of the node agent and of the user kube-apiserver with 100 nodes and 1000 pods.
//
//	go test -run '^$' -bench Nodes -benchtime 1x ./test/bench/
func BenchmarkNodes(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	env := startStack(ctx, b, stack.Config{})
	defer env.Stop()
	// Both sides unthrottled: the servers are measured, not client-side rate limits.
	hostCfg := rest.CopyConfig(env.AdminConfig)
	hostCfg.QPS, hostCfg.Burst = 1e6, 1e6
	cs := versioned.NewForConfigOrDie(hostCfg)
	clusters := cs.ContainerserviceV1alpha1().Clusters("bench")
	if _, err := clusters.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "c0"},
		Spec: v1alpha1.ClusterSpec{Administrators: []v1alpha1.Subject{{Kind: v1alpha1.SubjectKindUser, Name: "root@example.com"}}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	user := readyClusterAdmin(ctx, b, clusters, "c0")
	nodes := cs.ContainerserviceV1alpha1().Nodes("bench")

	// The node agent of a cluster with one node.
	if _, err := nodes.Create(ctx, &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: "solo"}, Spec: v1alpha1.NodeSpec{ClusterName: "c0"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	poll(ctx, b, "one Node Ready", 100*time.Millisecond, func() bool {
		c, err := clusters.Get(ctx, "c0", metav1.GetOptions{})
		return err == nil && c.Status.Nodes.Ready == 1
	})
	oneNodeAgentMiB := agentRSS(env)

	// 100 Nodes to Ready.
	start := time.Now()
	parallel(benchNodes, func(i int) {
		n := &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%03d", i)}, Spec: v1alpha1.NodeSpec{ClusterName: "c0"}}
		if _, err := nodes.Create(ctx, n, metav1.CreateOptions{}); err != nil {
			b.Error(err)
		}
	})
	poll(ctx, b, "100 Nodes Ready", 100*time.Millisecond, func() bool {
		c, err := clusters.Get(ctx, "c0", metav1.GetOptions{})
		return err == nil && c.Status.Nodes.Ready == benchNodes+1
	})
	ours := time.Since(start)
	hundredNodesAgentMiB := agentRSS(env)

	// The reference: the same nodes written straight into the cluster, kept by the same agent
	// (a node UID of its own, so that the node controller leaves them to the agent).
	start = time.Now()
	parallel(benchNodes, func(i int) {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ref%03d", i), Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue},
			Annotations: map[string]string{v1alpha1.NodeUIDAnnotation: "bench-reference"}},
			Status: corev1.NodeStatus{Capacity: nodeCapacity(), Allocatable: nodeCapacity()}}
		if _, err := user.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			b.Error(err)
		}
	})
	poll(ctx, b, "100 direct nodes Ready", 100*time.Millisecond, func() bool { return readyNodes(ctx, user, "ref") == benchNodes })
	direct := time.Since(start)
	parallel(benchNodes, func(i int) { _ = user.CoreV1().Nodes().Delete(ctx, fmt.Sprintf("ref%03d", i), metav1.DeleteOptions{}) })

	// Drains of a node running 100 pods, in turns: through the Node's deletion, and
	// kubectl's drain library on a twin node.
	for _, node := range []string{"n000", "n001"} {
		if _, err := user.AppsV1().Deployments("default").Create(ctx, pinned("on-"+node, node, podsPerDrain), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	poll(ctx, b, "200 pinned pods running", 200*time.Millisecond, func() bool {
		return runningOn(ctx, user, "n000") == podsPerDrain && runningOn(ctx, user, "n001") == podsPerDrain
	})
	start = time.Now()
	if err := nodes.Delete(ctx, "n000", metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
	poll(ctx, b, "n000 drained and gone", 100*time.Millisecond, func() bool {
		_, err := nodes.Get(ctx, "n000", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	ourDrain := time.Since(start)
	start = time.Now()
	helper := &drain.Helper{Ctx: ctx, Client: user, Force: true, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
		GracePeriodSeconds: -1, Timeout: 5 * time.Minute, Out: io.Discard, ErrOut: io.Discard}
	n001, err := user.CoreV1().Nodes().Get(ctx, "n001", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := drain.RunCordonOrUncordon(helper, n001, true); err != nil {
		b.Fatal(err)
	}
	if err := drain.RunNodeDrain(helper, "n001"); err != nil {
		b.Fatal(err)
	}
	if err := user.CoreV1().Nodes().Delete(ctx, "n001", metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
	kubectlDrain := time.Since(start)
	for _, node := range []string{"n000", "n001"} {
		_ = user.AppsV1().Deployments("default").Delete(ctx, "on-"+node, metav1.DeleteOptions{})
	}

	// Memory with 100 nodes and 1000 pods.
	_ = nodes.Delete(ctx, "n001", metav1.DeleteOptions{}) // its node is gone; the Node follows
	parallel(1, func(i int) {
		n := &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%03d", benchNodes+i)}, Spec: v1alpha1.NodeSpec{ClusterName: "c0"}}
		if _, err := nodes.Create(ctx, n, metav1.CreateOptions{}); err != nil {
			b.Error(err)
		}
	})
	if _, err := user.AppsV1().Deployments("default").Create(ctx, pinned("fleet", "", podsForMemory), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	poll(ctx, b, "1000 pods running on 100 nodes", 500*time.Millisecond, func() bool {
		c, err := clusters.Get(ctx, "c0", metav1.GetOptions{})
		return err == nil && c.Status.Nodes.Ready == benchNodes && c.Status.Nodes.Total == benchNodes && runningOn(ctx, user, "") == podsForMemory
	})
	var agentMiB, apiserverMiB float64
	for pid, bin := range env.ClusterProcesses("bench", "c0") {
		switch bin {
		case "kwok":
			agentMiB = rssMiB(pid)
		case "kube-apiserver":
			apiserverMiB = rssMiB(pid)
		}
	}

	fmt.Printf(`
| measure | containerservice | reference | ratio |
|---|---|---|---|
| 100 nodes created → all Ready (Node objects vs nodes written into the cluster) | %.1f s (%.0f nodes/s) | %.1f s (%.0f nodes/s) | %.2f |
| drain and delete a node running 100 pods (Node deletion vs kubectl/pkg/drain) | %.1f s | %.1f s | %.2f |
| node agent (kwok) RSS: 1 node / 100 nodes / 100 nodes and 1000 pods | %.0f / %.0f / %.0f MiB | | |
| user kube-apiserver RSS, 100 nodes, 1000 pods | %.0f MiB | | |
`, ours.Seconds(), benchNodes/ours.Seconds(), direct.Seconds(), benchNodes/direct.Seconds(), ours.Seconds()/direct.Seconds(),
		ourDrain.Seconds(), kubectlDrain.Seconds(), ourDrain.Seconds()/kubectlDrain.Seconds(), oneNodeAgentMiB, hundredNodesAgentMiB, agentMiB, apiserverMiB)
	b.ReportMetric(benchNodes/ours.Seconds(), "nodes/s")
	b.ReportMetric(ourDrain.Seconds(), "s-drain-100-pods")
	b.ReportMetric(agentMiB, "MiB-kwok")
	b.ReportMetric(apiserverMiB, "MiB-apiserver")
}

// agentRSS is the resident memory of the cluster's node agent.
func agentRSS(env *framework.Env) float64 {
	for pid, bin := range env.ClusterProcesses("bench", "c0") {
		if bin == "kwok" {
			return rssMiB(pid)
		}
	}
	return 0
}

func nodeCapacity() corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: v1alpha1.DefaultNodeCPU, corev1.ResourceMemory: v1alpha1.DefaultNodeMemory,
		corev1.ResourcePods: *resource.NewQuantity(v1alpha1.DefaultNodePods, resource.DecimalSI)}
}

// parallel runs f for 0..n-1 with nodeCreateJobs at once.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range nodeCreateJobs {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func readyNodes(ctx context.Context, client kubernetes.Interface, prefix string) int {
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return 0
	}
	ready := 0
	for _, n := range list.Items {
		if len(n.Name) < len(prefix) || n.Name[:len(prefix)] != prefix {
			continue
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready
}

// runningOn counts running pods on a node ("" for every node).
func runningOn(ctx context.Context, client kubernetes.Interface, node string) int {
	opts := metav1.ListOptions{ResourceVersion: "0"}
	if node != "" {
		opts.FieldSelector = "spec.nodeName=" + node
	}
	list, err := client.CoreV1().Pods("default").List(ctx, opts)
	if err != nil {
		return 0
	}
	running := 0
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running++
		}
	}
	return running
}

// pinned is a Deployment of tiny pods, on one node when node is set.
func pinned(name, node string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	var selector map[string]string
	if node != "" {
		selector = map[string]string{corev1.LabelHostname: node}
	}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{NodeSelector: selector,
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}}}}}
}
