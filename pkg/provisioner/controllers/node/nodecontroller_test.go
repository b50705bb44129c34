package node

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned/fake"
	csinformers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions"
)

type fixture struct {
	ctrl            *Controller
	host            *fake.Clientset
	user            *kubefake.Clientset
	nodes, clusters interface{ Add(any) error }
	clock           time.Time
}

func runningCluster() *v1alpha1.Cluster {
	return &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: "acme", UID: "cluster-uid"},
		Status: v1alpha1.ClusterStatus{Phase: v1alpha1.ClusterRunning}}
}

func testNode() *v1alpha1.Node {
	return &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-1", Namespace: "acme", UID: "node-uid", Generation: 1,
		Finalizers: []string{v1alpha1.NodeFinalizer}},
		Spec: v1alpha1.NodeSpec{ClusterName: "prod",
			Resources: v1alpha1.NodeResources{CPU: resource.MustParse("8"), Memory: resource.MustParse("32Gi"), Pods: 110,
				GPU: &v1alpha1.GPUResources{Count: 2, Model: "nvidia-tesla-t4"}},
			Labels: map[string]string{"pool": "gpu"},
			Taints: []v1alpha1.Taint{{Key: "dedicated", Value: "ml", Effect: v1alpha1.TaintEffectNoSchedule}}}}
}

func newFixture(t *testing.T, cl *v1alpha1.Cluster, n *v1alpha1.Node, userObjs ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{host: fake.NewSimpleClientset(cl, n), user: kubefake.NewSimpleClientset(userObjs...), clock: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	factory := csinformers.NewSharedInformerFactory(f.host, 0).Containerservice().V1alpha1()
	ctrl, err := New(f.host, factory.Nodes(), factory.Clusters(), nil, record.NewFakeRecorder(100))
	if err != nil {
		t.Fatal(err)
	}
	ctrl.userClient = func(context.Context, *v1alpha1.Cluster) (kubernetes.Interface, error) { return f.user, nil }
	ctrl.now = func() time.Time { return f.clock }
	ctrl.watching = false
	f.ctrl, f.nodes, f.clusters = ctrl, factory.Nodes().Informer().GetIndexer(), factory.Clusters().Informer().GetIndexer()
	if err := f.clusters.Add(cl); err != nil {
		t.Fatal(err)
	}
	if err := f.nodes.Add(n); err != nil {
		t.Fatal(err)
	}
	return f
}

// reconcile runs one pass and copies the API's Node into the cache, as a watch would.
func (f *fixture) reconcile(t *testing.T) (*v1alpha1.Node, time.Duration) {
	t.Helper()
	after, err := f.ctrl.Reconcile(context.Background(), "acme/gpu-1")
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	n, err := f.host.ContainerserviceV1alpha1().Nodes("acme").Get(context.Background(), "gpu-1", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, after
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := f.nodes.(interface{ Update(any) error }).Update(n); err != nil {
		t.Fatal(err)
	}
	return n, after
}

func (f *fixture) userNode(t *testing.T) *corev1.Node {
	t.Helper()
	node, err := f.user.CoreV1().Nodes().Get(context.Background(), "gpu-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// TestNodeMadeFromSpecAndMirrored: the node in the cluster has the spec's capacity (GPUs
// as nvidia.com/gpu), labels (the GPU model among them), taints and the node agent's
// mark; its conditions, addresses, version and pods come back in the status.
func TestNodeMadeFromSpecAndMirrored(t *testing.T) {
	f := newFixture(t, runningCluster(), testNode())
	n, _ := f.reconcile(t)
	node := f.userNode(t)
	if node.Annotations[v1alpha1.NodeUIDAnnotation] != "node-uid" || node.Labels[v1alpha1.ManagedByLabel] != v1alpha1.ManagedByValue ||
		node.Labels[v1alpha1.GPUProductLabel] != "nvidia-tesla-t4" || node.Labels["pool"] != "gpu" || node.Labels[corev1.LabelHostname] != "gpu-1" {
		t.Errorf("node metadata %+v", node.ObjectMeta)
	}
	if q := node.Status.Allocatable[v1alpha1.GPUResourceName]; q.Value() != 2 {
		t.Errorf("allocatable %v", node.Status.Allocatable)
	}
	if q := node.Status.Capacity[corev1.ResourcePods]; q.Value() != 110 {
		t.Errorf("capacity %v", node.Status.Capacity)
	}
	if len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Key != "dedicated" {
		t.Errorf("taints %v", node.Spec.Taints)
	}
	if n.Status.Phase != v1alpha1.NodeProvisioning {
		t.Errorf("phase %s before the agent reported, want Provisioning", n.Status.Phase)
	}

	// The agent reports; two pods run on the node.
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastTransitionTime: metav1.Now()}}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.NodeInfo.KubeletVersion = "kwok-v0.8.0"
	if _, err := f.user.CoreV1().Nodes().UpdateStatus(context.Background(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{pod("a", corev1.PodRunning), pod("b", corev1.PodPending)} {
		if _, err := f.user.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	n, after := f.reconcile(t)
	if n.Status.Phase != v1alpha1.NodeReady || n.Status.KubeletVersion != "kwok-v0.8.0" || len(n.Status.Addresses) != 1 ||
		n.Status.Pods != 2 || n.Status.PodPhases != (v1alpha1.PodPhaseCounts{Running: 1, Pending: 1}) || after != resync {
		t.Errorf("status %+v, requeue %v", n.Status, after)
	}
	if c := n.Status.Conditions; len(c) != 1 || c[0].Type != "Ready" || c[0].Reason != "KubeletReady" {
		t.Errorf("conditions %+v", c)
	}
}

func pod(name string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "gpu-1"}, Status: corev1.PodStatus{Phase: phase}}
}

// TestEditsInsideAreUndone: labels, taints and the cordon go back to the spec; labels and
// taints others own stay; a label taken out of the spec goes from the node.
func TestEditsInsideAreUndone(t *testing.T) {
	f := newFixture(t, runningCluster(), testNode())
	f.reconcile(t)
	node := f.userNode(t)
	delete(node.Labels, "pool")
	node.Labels["team"] = "ml"
	node.Spec.Unschedulable = true
	node.Spec.Taints = []corev1.Taint{{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule}, {Key: "rogue", Effect: corev1.TaintEffectNoExecute}}
	if _, err := f.user.CoreV1().Nodes().Update(context.Background(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	n := testNode()
	n.Spec.Labels = map[string]string{"tier": "batch"} // pool taken out of the spec
	if err := f.nodes.(interface{ Update(any) error }).Update(n); err != nil {
		t.Fatal(err)
	}
	f.reconcile(t)
	node = f.userNode(t)
	if _, ok := node.Labels["pool"]; ok || node.Labels["tier"] != "batch" || node.Labels["team"] != "ml" {
		t.Errorf("labels %v: want tier, team kept, pool gone", node.Labels)
	}
	keys := []string{}
	for _, taint := range node.Spec.Taints {
		keys = append(keys, taint.Key)
	}
	if !slices.Equal(keys, []string{"dedicated", "node.kubernetes.io/not-ready"}) || node.Spec.Unschedulable {
		t.Errorf("taints %v unschedulable %v", keys, node.Spec.Unschedulable)
	}
}

// TestAnotherNodeOfTheNameIsLeftAlone: a node not made for the Node is never changed,
// and deleting the Node does not delete it.
func TestAnotherNodeOfTheNameIsLeftAlone(t *testing.T) {
	theirs := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-1", Labels: map[string]string{"owner": "admin"}}}
	f := newFixture(t, runningCluster(), testNode(), theirs)
	n, _ := f.reconcile(t)
	if n.Status.Phase != v1alpha1.NodeFailed || !strings.Contains(n.Status.Conditions[0].Message, "not made for this Node") {
		t.Errorf("status %+v", n.Status)
	}
	if got := f.userNode(t); got.Labels["owner"] != "admin" || len(got.Labels) != 1 {
		t.Errorf("their node changed: %+v", got.ObjectMeta)
	}
	n.DeletionTimestamp = &metav1.Time{Time: f.clock}
	if err := f.nodes.(interface{ Update(any) error }).Update(n); err != nil {
		t.Fatal(err)
	}
	f.reconcile(t) // the drain starts
	if n, _ = f.reconcile(t); n != nil && slices.Contains(n.Finalizers, v1alpha1.NodeFinalizer) {
		t.Errorf("finalizer kept: %+v", n)
	}
	if got := f.userNode(t); got.Spec.Unschedulable {
		t.Error("their node was cordoned")
	}
}

// TestDrainHeldByBudgetEndsAtDeadline: eviction refused by a PodDisruptionBudget shows
// in the status, by name; the node is cordoned; once the deadline (the Node's own
// timeout, recorded at the start) has passed, the node is deleted anyway.
func TestDrainHeldByBudgetEndsAtDeadline(t *testing.T) {
	n := testNode()
	n.Spec.DrainTimeout = &metav1.Duration{Duration: time.Minute}
	f := newFixture(t, runningCluster(), n)
	f.reconcile(t)
	two := intstr.FromInt32(2)
	if _, err := f.user.PolicyV1().PodDisruptionBudgets("default").Create(context.Background(), &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web-pdb", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &two, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.user.CoreV1().Pods("default").Create(context.Background(), pod("a", corev1.PodRunning), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	evictions := refuseEvictions(f, nil)
	cur, _ := f.reconcile(t)
	cur.DeletionTimestamp = &metav1.Time{Time: f.clock}
	if err := f.nodes.(interface{ Update(any) error }).Update(cur); err != nil {
		t.Fatal(err)
	}
	start := f.clock
	cur, after := f.reconcile(t)
	d := cur.Status.Drain
	if cur.Status.Phase != v1alpha1.NodeDraining || d == nil || !d.Deadline.Time.Equal(start.Add(time.Minute)) || d.PodsRemaining != 1 ||
		len(d.BlockedBy) != 1 || !strings.Contains(d.BlockedBy[0], "PodDisruptionBudget web-pdb") || evictions.Load() != 1 || after <= 0 {
		t.Fatalf("status %+v drain %+v evictions %d requeue %v", cur.Status, d, evictions.Load(), after)
	}
	if !f.userNode(t).Spec.Unschedulable {
		t.Error("the draining node is not cordoned")
	}

	// A restart finds the deadline in the status: time passes, it is not moved.
	f.clock = start.Add(59 * time.Second)
	cur, _ = f.reconcile(t)
	if !cur.Status.Drain.Deadline.Time.Equal(start.Add(time.Minute)) || cur.Status.Phase != v1alpha1.NodeDraining {
		t.Fatalf("before the deadline: %+v", cur.Status)
	}
	f.clock = start.Add(time.Minute)
	if cur, _ = f.reconcile(t); cur != nil && slices.Contains(cur.Finalizers, v1alpha1.NodeFinalizer) {
		t.Fatalf("the Node is kept after its deadline: %+v", cur.Status)
	}
	if _, err := f.user.CoreV1().Nodes().Get(context.Background(), "gpu-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the node is still in the cluster: %v", err)
	}
}

// TestNodesOfADeletedClusterGoWithoutDrain: the cluster's control plane goes with it.
func TestNodesOfADeletedClusterGoWithoutDrain(t *testing.T) {
	cl := runningCluster()
	cl.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	n := testNode()
	n.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	f := newFixture(t, cl, n)
	f.ctrl.userClient = func(context.Context, *v1alpha1.Cluster) (kubernetes.Interface, error) {
		t.Fatal("a deleted cluster was reached")
		return nil, nil
	}
	if got, _ := f.reconcile(t); got != nil && slices.Contains(got.Finalizers, v1alpha1.NodeFinalizer) {
		t.Errorf("finalizer kept: %+v", got)
	}
}

func TestDrainTimeoutPrecedence(t *testing.T) {
	n, cl := testNode(), runningCluster()
	if got := drainTimeout(n, cl); got != v1alpha1.DefaultNodeDrainTimeout {
		t.Errorf("default %v", got)
	}
	cl.Spec.NodeDrainTimeout = &metav1.Duration{Duration: time.Minute}
	if got := drainTimeout(n, cl); got != time.Minute {
		t.Errorf("cluster's %v", got)
	}
	n.Spec.DrainTimeout = &metav1.Duration{Duration: time.Second}
	if got := drainTimeout(n, cl); got != time.Second {
		t.Errorf("node's %v", got)
	}
}

func TestReasonKeptOnlyWhenValid(t *testing.T) {
	for in, want := range map[string]string{"KubeletReady": "KubeletReady", "": "NoReason", "not ready": "NoReason", "a:b,c_d": "a:b,c_d"} {
		if got := reason(in); got != want {
			t.Errorf("reason(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestASpecTaintOfKubernetesKeyIsNotDoubled: a spec taint with the key and effect of one
// Kubernetes put there replaces it rather than doubling it (which the API refuses).
func TestASpecTaintOfKubernetesKeyIsNotDoubled(t *testing.T) {
	n := testNode()
	n.Spec.Taints = []v1alpha1.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: v1alpha1.TaintEffectNoSchedule}}
	got := desiredTaints(n, []corev1.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoExecute}, {Key: "rogue", Effect: corev1.TaintEffectNoSchedule}})
	if len(got) != 2 || got[0].Key != "node.kubernetes.io/unschedulable" || got[1].Key != "node.kubernetes.io/not-ready" {
		t.Errorf("taints %v", got)
	}
}
