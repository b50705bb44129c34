package node

import (
	"context"
	"fmt"
	"regexp"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// podPhases counts the pods bound to the node by phase, read from the user
// kube-apiserver's watch cache.
func podPhases(ctx context.Context, client kubernetes.Interface, node string) (v1alpha1.PodPhaseCounts, error) {
	var counts v1alpha1.PodPhaseCounts
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(), ResourceVersion: "0"})
	if err != nil {
		return counts, fmt.Errorf("list the pods of node %s: %w", node, err)
	}
	for _, p := range pods.Items {
		switch p.Status.Phase {
		case corev1.PodRunning:
			counts.Running++
		case corev1.PodSucceeded:
			counts.Succeeded++
		case corev1.PodFailed:
			counts.Failed++
		default:
			counts.Pending++
		}
	}
	return counts, nil
}

func total(p v1alpha1.PodPhaseCounts) int32 { return p.Pending + p.Running + p.Succeeded + p.Failed }

// mirroredStatus is the status of a Node whose node the cluster has: its conditions,
// addresses, allocatable and kubelet version as the cluster reports them, its pods, and
// the phase its Ready condition gives.
func mirroredStatus(n *v1alpha1.Node, node *corev1.Node, pods v1alpha1.PodPhaseCounts) v1alpha1.NodeStatus {
	st := v1alpha1.NodeStatus{ObservedGeneration: n.Generation, Phase: v1alpha1.NodeProvisioning, Drain: n.Status.Drain}
	for _, c := range node.Status.Conditions {
		// What is inside the cluster is the tenant's to write: only as many conditions as
		// a kubelet reports, each valid as a Condition, are mirrored.
		if len(st.Conditions) == maxConditions || len(validation.IsQualifiedName(string(c.Type))) > 0 ||
			meta.FindStatusCondition(st.Conditions, string(c.Type)) != nil {
			continue
		}
		status := metav1.ConditionStatus(c.Status)
		if status != metav1.ConditionTrue && status != metav1.ConditionFalse {
			status = metav1.ConditionUnknown
		}
		st.Conditions = append(st.Conditions, metav1.Condition{Type: string(c.Type), Status: status,
			Reason: reason(c.Reason), Message: truncate(c.Message, maxMessage), LastTransitionTime: transitionTime(c.LastTransitionTime, node.CreationTimestamp), ObservedGeneration: n.Generation})
		if c.Type == corev1.NodeReady {
			st.Phase = v1alpha1.NodeNotReady
			if c.Status == corev1.ConditionTrue {
				st.Phase = v1alpha1.NodeReady
			}
		}
	}
	for _, a := range node.Status.Addresses[:min(len(node.Status.Addresses), maxAddresses)] {
		st.Addresses = append(st.Addresses, v1alpha1.NodeAddress{Type: truncate(string(a.Type), 64), Address: truncate(a.Address, 256)})
	}
	if len(node.Status.Allocatable) > 0 {
		st.Allocatable = map[string]resource.Quantity{}
		for name, q := range node.Status.Allocatable {
			st.Allocatable[string(name)] = q.DeepCopy()
		}
	}
	st.KubeletVersion = truncate(node.Status.NodeInfo.KubeletVersion, 64)
	st.PodPhases, st.Pods = pods, total(pods)
	return st
}

// Bounds of what is mirrored from a node: a kubelet reports five conditions and a few
// addresses; a tenant who writes thousands into their node does not grow the Node.
const (
	maxConditions = 16
	maxAddresses  = 16
	maxMessage    = 1024
)

// truncate cuts s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// waitingStatus says the node waits for its cluster; what was mirrored last stays.
func waitingStatus(n *v1alpha1.Node, msg string) v1alpha1.NodeStatus {
	st := *n.Status.DeepCopy()
	st.ObservedGeneration = n.Generation
	switch st.Phase {
	case "", v1alpha1.NodePending, v1alpha1.NodeProvisioning, v1alpha1.NodeFailed:
		st.Phase = v1alpha1.NodePending
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: string(corev1.NodeReady), Status: metav1.ConditionUnknown,
		Reason: "ClusterNotRunning", Message: msg, ObservedGeneration: n.Generation})
	return st
}

// failedStatus says the node cannot be made.
func failedStatus(n *v1alpha1.Node, msg string) v1alpha1.NodeStatus {
	st := *n.Status.DeepCopy()
	st.ObservedGeneration, st.Phase = n.Generation, v1alpha1.NodeFailed
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: string(corev1.NodeReady), Status: metav1.ConditionFalse,
		Reason: "NodeNameTaken", Message: msg, ObservedGeneration: n.Generation})
	return st
}

// statusEqual compares statuses semantically (quantities by value).
func statusEqual(a, b v1alpha1.NodeStatus) bool { return apiequality.Semantic.DeepEqual(a, b) }

var reasonPattern = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)

// reason keeps a node condition's reason when it is a valid Condition reason.
func reason(r string) string {
	if len(r) <= 1024 && reasonPattern.MatchString(r) {
		return r
	}
	return "NoReason"
}

// transitionTime keeps the node's transition time, or takes the node's creation when it
// has none (a Condition must have one, and a stable one).
func transitionTime(t, created metav1.Time) metav1.Time {
	if t.IsZero() {
		return created
	}
	return t
}
