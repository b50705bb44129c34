package nodecontroller

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
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/drain"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
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
	if !running(cl) {
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
	ours, err := cordon(ctx, client, n)
	if err != nil {
		return 0, err
	}
	var pods []corev1.Pod
	if ours {
		helper := &drain.Helper{Ctx: ctx, Client: client, Force: true, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
			GracePeriodSeconds: -1, Out: io.Discard, ErrOut: io.Discard}
		list, errs := helper.GetPodsForDeletion(n.Name)
		if len(errs) > 0 {
			return 0, fmt.Errorf("list the pods to evict from %s: %w", n.Name, errors.Join(errs...))
		}
		pods = list.Pods()
	}
	deadline := n.Status.Drain.Deadline.Time
	st := *n.Status.DeepCopy()
	st.Drain.PodsRemaining = int32(len(pods))
	if len(pods) == 0 || !now.Before(deadline) {
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
		return 0, c.removeFinalizer(ctx, n)
	}
	st.Phase = v1alpha1.NodeDraining
	st.Drain.BlockedBy = evict(ctx, client, pods)
	if err := c.writeStatus(ctx, n, st); err != nil {
		return 0, err
	}
	// Evicted pods go within moments; blocked ones wait for their budget to allow.
	poll := drainPollEvicting
	if len(st.Drain.BlockedBy) > 0 {
		poll = drainPoll
	}
	return min(poll, deadline.Sub(now)+10*time.Millisecond), nil
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
// evicts pods at once rather than one after the other.
const evictParallelism = 16

// evict asks the Eviction API to evict each pod not already going, and returns what
// refused, naming the PodDisruptionBudget that blocks each pod, in the pods' order.
func evict(ctx context.Context, client kubernetes.Interface, pods []corev1.Pod) []string {
	helper := &drain.Helper{Ctx: ctx, Client: client, GracePeriodSeconds: -1}
	results := make([]string, len(pods))
	slots := make(chan struct{}, evictParallelism)
	var wg sync.WaitGroup
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil {
			continue // evicted already, on its way out
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			err := helper.EvictPod(*p, policyv1.SchemeGroupVersion)
			switch {
			case err == nil, apierrors.IsNotFound(err):
			case apierrors.IsTooManyRequests(err):
				results[i] = fmt.Sprintf("pod %s/%s: %s", p.Namespace, p.Name, blockingBudgets(ctx, client, p, err))
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
	return blocked
}

// blockingBudgets names the PodDisruptionBudgets that select the pod.
func blockingBudgets(ctx context.Context, client kubernetes.Interface, p *corev1.Pod, refusal error) string {
	pdbs, err := client.PolicyV1().PodDisruptionBudgets(p.Namespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return refusal.Error()
	}
	var names []string
	for _, pdb := range pdbs.Items {
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
