package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/drain"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/clusterclient"
)

// drainTimeout is the Node's own timeout, else its cluster's, else the default.
func drainTimeout(n *v1alpha1.Node, cl *v1alpha1.Cluster) time.Duration {
	switch {
	case n.Spec.DrainTimeout != nil:
		return n.Spec.DrainTimeout.Duration
	case cl.Spec.NodeDrainTimeout != nil:
		return cl.Spec.NodeDrainTimeout.Duration
	}
	return v1alpha1.DefaultNodeDrainTimeout
}

// drainAndDelete drains the node of a Node being deleted, a step per pass: cordon it,
// evict every pod that is not a DaemonSet's or a mirror pod through the Eviction API,
// and report what is left and what blocks it. Once no pod is left, or the deadline
// (recorded in the status before the first eviction) has passed, the node is deleted and
// the Node let go.
func (c *Controller) drainAndDelete(ctx context.Context, n *v1alpha1.Node, cl *v1alpha1.Cluster) (time.Duration, error) {
	if !clusterclient.Reachable(cl) {
		return waitForCluster, nil // nothing can be evicted or deleted meanwhile
	}
	client, err := c.userClient(ctx, cl)
	if err != nil {
		return 0, err
	}
	now := c.now()
	if n.Status.Drain == nil || n.Status.Drain.Deadline == nil {
		deadline := now.Add(drainTimeout(n, cl))
		st := *n.Status.DeepCopy()
		st.Phase = v1alpha1.NodeDraining
		st.Drain = &v1alpha1.DrainStatus{StartTime: &metav1.Time{Time: now}, Deadline: &metav1.Time{Time: deadline}}
		n.Status = st
		if n, err = c.client.ContainerserviceV1alpha1().Nodes(n.Namespace).UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			return 0, err
		}
		c.recorder.Eventf(n, corev1.EventTypeNormal, "Draining", "Evicting the pods of node %s; it is deleted anyway at %s", n.Name, deadline.UTC().Format(time.RFC3339))
	}
	deadline := n.Status.Drain.Deadline.Time
	// Once past the deadline, a node is deleted after this process has asked every pod
	// once (a deadline that passed while the cluster or the server was down does not take
	// the pods' budgets away unasked), or after overdueGrace of failing to.
	overdue := c.drains.overdue(n.UID, now, deadline)
	ours, pods, err := podsToEvict(ctx, client, n)
	switch {
	case err == nil:
		c.drains.listed(n.UID)
	case now.Before(deadline):
		return 0, err
	case !overdue:
		// Looked at again soon, not after the error backoff: the grace is what holds it.
		c.drains.failed(n.UID, now)
		klog.ErrorS(err, "Cannot look at the pods of a node past its drain deadline", "node", klog.KObj(n))
		return waitForCluster, nil
	default:
		klog.ErrorS(err, "Deleting a node past its drain deadline without a last look at its pods", "node", klog.KObj(n))
		ours, pods = true, nil
	}
	st := *n.Status.DeepCopy()
	st.Drain.PodsRemaining = int32(len(pods))
	if len(pods) == 0 || overdue {
		st.Phase = v1alpha1.NodeDeleting
		if err := c.writeStatus(ctx, n, st); err != nil {
			return 0, err
		}
		if len(pods) > 0 {
			c.recorder.Eventf(n, corev1.EventTypeWarning, "DrainTimedOut", "Deleting node %s with %d pods left: the drain timeout passed at %s",
				n.Name, len(pods), deadline.UTC().Format(time.RFC3339))
		}
		if ours {
			if err := deleteUserNode(ctx, client, n); err != nil {
				return 0, err
			}
		}
		c.recorder.Eventf(n, corev1.EventTypeNormal, "NodeDeleted", "Deleted node %s from cluster %s", n.Name, n.Spec.ClusterName)
		klog.InfoS("Deleted node", "node", klog.KObj(n), "cluster", n.Spec.ClusterName, "podsLeft", len(pods))
		if err := c.removeFinalizer(ctx, n); err != nil {
			return 0, err
		}
		c.drains.forget(n.UID)
		return 0, nil
	}
	st.Phase = v1alpha1.NodeDraining
	pods = c.drains.unaskedFirst(n.UID, pods)
	var asked []types.UID
	st.Drain.BlockedBy, asked = evict(ctx, client, pods)
	roundDone := c.drains.asked(n.UID, asked, pods)
	if err := c.writeStatus(ctx, n, st); err != nil {
		return 0, err
	}
	// Evicted pods go within moments, and pods not asked yet are asked at once; blocked
	// ones wait for their budget to allow, asked less often the longer they stay blocked.
	poll := drainPollEvicting
	if len(st.Drain.BlockedBy) > 0 && roundDone {
		poll = c.drains.blockedPoll(n.UID)
	} else if len(st.Drain.BlockedBy) == 0 {
		c.drains.unblocked(n.UID)
	}
	if left := deadline.Sub(now); left > 0 {
		poll = min(poll, left+10*time.Millisecond) // back at the deadline
	}
	return poll, nil
}

// podsToEvict cordons the node and lists the pods a drain evicts: all but DaemonSets'
// and mirror pods. ours is false when the cluster has no node made for this Node.
func podsToEvict(ctx context.Context, client kubernetes.Interface, n *v1alpha1.Node) (ours bool, pods []corev1.Pod, err error) {
	if ours, err = cordon(ctx, client, n); err != nil || !ours {
		return ours, nil, err
	}
	helper := &drain.Helper{Ctx: ctx, Client: client, Force: true, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
		GracePeriodSeconds: -1, Out: io.Discard, ErrOut: io.Discard}
	list, errs := helper.GetPodsForDeletion(n.Name)
	if len(errs) > 0 {
		return true, nil, fmt.Errorf("list the pods to evict from %s: %w", n.Name, errors.Join(errs...))
	}
	return true, list.Pods(), nil
}

// cordon marks the node unschedulable; false when the cluster has no node made for this
// Node (none, or another's), so there is nothing to drain or delete.
func cordon(ctx context.Context, client kubernetes.Interface, n *v1alpha1.Node) (bool, error) {
	node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get node %s: %w", n.Name, err)
	}
	if node.Annotations[v1alpha1.NodeUIDAnnotation] != string(n.UID) {
		return false, nil
	}
	if node.Spec.Unschedulable {
		return true, nil
	}
	node = node.DeepCopy()
	node.Spec.Unschedulable = true
	if _, err := client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return false, fmt.Errorf("cordon node %s: %w", n.Name, err)
	}
	return true, nil
}

// evictParallelism bounds the evictions in flight for one node, as kubectl drain
// evicts pods at once rather than one after the other; maxEvictionsPerPass bounds those
// of one pass, so that a node of thousands of blocked pods holds a worker for moments.
const (
	evictParallelism    = 16
	maxEvictionsPerPass = 256
)

// evict asks the Eviction API to evict each pod not already going, at most
// maxEvictionsPerPass of them in the order given. It returns what refused, naming the
// PodDisruptionBudget that blocks each pod, and the pods it asked.
func evict(ctx context.Context, client kubernetes.Interface, pods []corev1.Pod) ([]string, []types.UID) {
	helper := &drain.Helper{Ctx: ctx, Client: client, GracePeriodSeconds: -1}
	budgets := &budgetCache{client: client, byNamespace: map[string][]policyv1.PodDisruptionBudget{}}
	results := make([]string, len(pods))
	slots := make(chan struct{}, evictParallelism)
	var wg sync.WaitGroup
	var asked []types.UID
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil {
			continue // evicted already, on its way out
		}
		if len(asked) == maxEvictionsPerPass {
			break // the next pass asks the rest first
		}
		asked = append(asked, p.UID)
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			err := helper.EvictPod(*p, policyv1.SchemeGroupVersion)
			switch {
			case err == nil, apierrors.IsNotFound(err):
			case apierrors.IsTooManyRequests(err):
				results[i] = fmt.Sprintf("pod %s/%s: %s", p.Namespace, p.Name, budgets.blocking(ctx, p, err))
			default:
				results[i] = fmt.Sprintf("pod %s/%s: %v", p.Namespace, p.Name, err)
			}
		})
	}
	wg.Wait()
	var blocked []string
	for _, r := range results {
		if r != "" {
			blocked = append(blocked, r)
		}
	}
	return blocked, asked
}

// budgetCache lists each namespace's PodDisruptionBudgets once per pass.
type budgetCache struct {
	client      kubernetes.Interface
	mu          sync.Mutex
	byNamespace map[string][]policyv1.PodDisruptionBudget
}

// blocking names the PodDisruptionBudgets that select the pod, or says why the eviction
// was refused when none does.
func (b *budgetCache) blocking(ctx context.Context, p *corev1.Pod, refusal error) string {
	b.mu.Lock()
	pdbs, ok := b.byNamespace[p.Namespace]
	if !ok {
		// A failed list is not asked again in this pass: the refusal says why instead.
		list, err := b.client.PolicyV1().PodDisruptionBudgets(p.Namespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err == nil {
			pdbs = list.Items
		}
		b.byNamespace[p.Namespace] = pdbs
	}
	b.mu.Unlock()
	var names []string
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
			names = append(names, "PodDisruptionBudget "+pdb.Name)
		}
	}
	if len(names) == 0 {
		return refusal.Error()
	}
	return strings.Join(names, ", ")
}
