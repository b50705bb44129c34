package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clienttesting "k8s.io/client-go/testing"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// deletingPastDeadline makes the fixture's Node one being deleted whose drain deadline
// passed before this process saw it (the cluster or the server was down meanwhile).
func deletingPastDeadline(t *testing.T, f *fixture, pods int, asked *sync.Map) *atomic.Int32 {
	t.Helper()
	f.reconcile(t) // the node is made in the cluster
	for i := range pods {
		if _, err := f.user.CoreV1().Pods("default").Create(context.Background(), pod(fmt.Sprintf("p%d", i), corev1.PodRunning), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := f.host.ContainerserviceV1alpha1().Nodes("acme").Get(context.Background(), "gpu-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	started := f.clock.Add(-10 * time.Minute)
	cur.Status.Phase = v1alpha1.NodeDraining
	cur.Status.Drain = &v1alpha1.DrainStatus{StartTime: &metav1.Time{Time: started}, Deadline: &metav1.Time{Time: started.Add(5 * time.Minute)}}
	if cur, err = f.host.ContainerserviceV1alpha1().Nodes("acme").UpdateStatus(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cur.DeletionTimestamp = &metav1.Time{Time: started}
	if err := f.nodes.(interface{ Update(any) error }).Update(cur); err != nil {
		t.Fatal(err)
	}
	return refuseEvictions(f, asked)
}

// refuseEvictions makes the cluster refuse every eviction as a budget would, counting
// them, and noting the pods asked for in asked when it is not nil.
func refuseEvictions(f *fixture, asked *sync.Map) *atomic.Int32 {
	var evictions atomic.Int32
	f.user.PrependReactor("create", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		evictions.Add(1)
		if asked != nil {
			asked.Store(a.(clienttesting.CreateAction).GetObject().(*policyv1.Eviction).Name, true)
		}
		return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	})
	return &evictions
}

func finalizerKept(n *v1alpha1.Node) bool {
	return n != nil && slices.Contains(n.Finalizers, v1alpha1.NodeFinalizer)
}

// TestADeadlinePassedWhileAwayStillAsksOnce: a drain whose deadline passed while nobody
// could evict still asks every pod's budget once before the node is deleted.
func TestADeadlinePassedWhileAwayStillAsksOnce(t *testing.T) {
	f := newFixture(t, runningCluster(), testNode())
	evictions := deletingPastDeadline(t, f, 2, nil)
	cur, after := f.reconcile(t)
	if !finalizerKept(cur) || evictions.Load() != 2 || after <= 0 {
		t.Fatalf("first pass past the deadline: evictions %d, requeue %v, node %+v", evictions.Load(), after, cur)
	}
	if !f.userNode(t).Spec.Unschedulable {
		t.Error("not cordoned")
	}
	if cur, _ = f.reconcile(t); finalizerKept(cur) {
		t.Fatalf("the Node is kept after an eviction pass past its deadline: %+v", cur.Status)
	}
	if _, err := f.user.CoreV1().Nodes().Get(context.Background(), "gpu-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the node is still in the cluster: %v", err)
	}
}

// TestAFailingListDoesNotHoldAnOverdueNodeForEver: past its deadline, a node whose pods
// cannot be listed is deleted once overdueGrace has passed.
func TestAFailingListDoesNotHoldAnOverdueNodeForEver(t *testing.T) {
	f := newFixture(t, runningCluster(), testNode())
	deletingPastDeadline(t, f, 1, nil)
	f.user.PrependReactor("list", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("etcdserver: request timed out")
	})
	// Called directly: the fixture's reconcile would copy the API's Node, which the fake
	// keeps without its deletion, back into the cache.
	after, err := f.ctrl.Reconcile(context.Background(), "acme/gpu-1")
	if err != nil || after <= 0 {
		t.Fatalf("first failing pass past the deadline: requeue %v, %v", after, err)
	}
	if _, err := f.user.CoreV1().Nodes().Get(context.Background(), "gpu-1", metav1.GetOptions{}); err != nil {
		t.Fatalf("the node went at the first failing look: %v", err)
	}
	f.clock = f.clock.Add(overdueGrace)
	if cur, _ := f.reconcile(t); finalizerKept(cur) {
		t.Fatalf("the Node is held by a failing list: %+v", cur.Status)
	}
}

// TestEvictionsPerPassAreBounded: one pass asks for at most maxEvictionsPerPass pods;
// the next asks those not asked yet first, so pods that budgets block do not crowd out
// those after them, and a node past its deadline goes only once every pod was asked.
func TestEvictionsPerPassAreBounded(t *testing.T) {
	n := testNode()
	f := newFixture(t, runningCluster(), n)
	var asked sync.Map
	total := maxEvictionsPerPass + 20
	evictions := deletingPastDeadline(t, f, total, &asked)
	cur, _ := f.reconcile(t)
	if got := evictions.Load(); got != maxEvictionsPerPass {
		t.Errorf("evictions in one pass: %d, want %d", got, maxEvictionsPerPass)
	}
	if d := cur.Status.Drain; d == nil || int(d.PodsRemaining) != total || len(d.BlockedBy) != maxEvictionsPerPass {
		t.Errorf("drain status %+v", d)
	}
	if !finalizerKept(cur) {
		t.Fatal("the node went before every pod was asked")
	}
	if cur, _ = f.reconcile(t); !finalizerKept(cur) {
		t.Fatal("the node went in the pass that asked the last pods")
	}
	for i := range total {
		if _, ok := asked.Load(fmt.Sprintf("p%d", i)); !ok {
			t.Errorf("pod p%d was never asked", i)
		}
	}
	// One whole round blocked (2 s): the second waits 4 s.
	if poll := f.ctrl.drains.blockedPoll(n.UID); poll != 2*drainPoll {
		t.Errorf("a drain blocked for a second round polls after %v", poll)
	}
	if cur, _ = f.reconcile(t); finalizerKept(cur) {
		t.Error("the node is kept once every pod was asked past its deadline")
	}
}

// TestMirroredConditionsAreBounded: what a tenant writes into their node's status is
// mirrored only as far as it is valid and small.
func TestMirroredConditionsAreBounded(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Now()}}
	node.Status.Conditions = append(node.Status.Conditions,
		corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Message: string(make([]byte, 100000))},
		corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse},
		corev1.NodeCondition{Type: "not a type!", Status: corev1.ConditionTrue},
		corev1.NodeCondition{Type: "Odd", Status: "Maybe"})
	for i := range 100 {
		node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeConditionType(fmt.Sprintf("C%d", i)), Status: corev1.ConditionTrue})
	}
	for range 100 {
		node.Status.Addresses = append(node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: string(make([]byte, 5000))})
	}
	st := mirroredStatus(testNode(), node, v1alpha1.PodPhaseCounts{})
	if len(st.Conditions) != maxConditions || len(st.Addresses) != maxAddresses || len(st.Addresses[0].Address) > 256 {
		t.Errorf("%d conditions, %d addresses", len(st.Conditions), len(st.Addresses))
	}
	if errs := metav1validation.ValidateConditions(st.Conditions, field.NewPath("status", "conditions")); len(errs) > 0 {
		t.Errorf("mirrored conditions are invalid: %v", errs)
	}
	if st.Phase != v1alpha1.NodeReady || len(st.Conditions[0].Message) != maxMessage {
		t.Errorf("phase %s, first message %d bytes", st.Phase, len(st.Conditions[0].Message))
	}
	if odd := st.Conditions[1]; odd.Type != "Odd" || odd.Status != metav1.ConditionUnknown {
		t.Errorf("a condition of unknown status: %+v", odd)
	}
}

// TestEveryPodIsAskedWhileTheListShrinks: pods that go between passes move the others
// in the list; a node past its deadline still goes only once each pod was asked.
func TestEveryPodIsAskedWhileTheListShrinks(t *testing.T) {
	f := newFixture(t, runningCluster(), testNode())
	total := 3*maxEvictionsPerPass + 40
	deletingPastDeadline(t, f, total, nil)
	var asked sync.Map
	f.user.PrependReactor("create", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		name := a.(clienttesting.CreateAction).GetObject().(*policyv1.Eviction).Name
		asked.Store(name, true)
		var i int
		if _, err := fmt.Sscanf(name, "p%d", &i); err == nil && i%2 == 0 {
			// Even pods may go: they leave the list at once.
			return true, nil, f.user.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), "default", name)
		}
		return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	})
	for pass := 0; ; pass++ {
		after, err := f.ctrl.Reconcile(context.Background(), "acme/gpu-1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.user.CoreV1().Nodes().Get(context.Background(), "gpu-1", metav1.GetOptions{}); apierrors.IsNotFound(err) {
			break
		}
		if pass == 20 || after <= 0 {
			t.Fatalf("the node is still there after %d passes (requeue %v)", pass+1, after)
		}
	}
	for i := range total {
		if _, ok := asked.Load(fmt.Sprintf("p%d", i)); !ok {
			t.Errorf("pod p%d was never asked before the node went", i)
		}
	}
}
