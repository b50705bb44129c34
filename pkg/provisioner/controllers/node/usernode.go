package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/usercluster"
)

// appliedLabelsAnnotation remembers, on the node inside the cluster, the label keys the
// platform put there, so that a label taken out of spec.labels is taken off the node too
// while labels others add (kubectl label, a controller) are left alone.
const appliedLabelsAnnotation = v1alpha1.GroupName + "/applied-labels"

// keptTaintPrefixes are the taints Kubernetes itself puts on nodes (not-ready,
// unschedulable, pressure): they are no part of the spec and are never removed.
var keptTaintPrefixes = []string{"node.kubernetes.io/", "node.cloudprovider.kubernetes.io/"}

// ownerConflict says that a node of the Node's name exists in the cluster and was not
// made for it: it is never taken over, changed or deleted.
type ownerConflict struct{ name string }

func (e *ownerConflict) Error() string {
	return fmt.Sprintf("a node named %s exists in the cluster and was not made for this Node; it is left alone (delete that node or choose another name)", e.name)
}

// desiredLabels are the labels the spec puts on the node: the tenant's, the GPU's, the
// well-known ones a kubelet sets, and the mark the node agent selects by.
func desiredLabels(n *v1alpha1.Node) map[string]string {
	out := maps.Clone(n.Spec.Labels)
	if out == nil {
		out = map[string]string{}
	}
	out[corev1.LabelHostname] = n.Name
	out[corev1.LabelOSStable] = "linux"
	out[corev1.LabelArchStable] = "amd64"
	if gpu := n.Spec.Resources.GPU; gpu != nil {
		out[v1alpha1.GPUCountLabel] = strconv.Itoa(int(gpu.Count))
		if gpu.Model != "" {
			out[v1alpha1.GPUProductLabel] = gpu.Model
		}
	}
	out[v1alpha1.ManagedByLabel] = v1alpha1.ManagedByValue
	return out
}

// capacity is what the node offers pods; allocatable is the same (no reservations).
func capacity(n *v1alpha1.Node) corev1.ResourceList {
	r := corev1.ResourceList{
		corev1.ResourceCPU:    n.Spec.Resources.CPU.DeepCopy(),
		corev1.ResourceMemory: n.Spec.Resources.Memory.DeepCopy(),
		corev1.ResourcePods:   *resource.NewQuantity(int64(n.Spec.Resources.Pods), resource.DecimalSI),
	}
	if gpu := n.Spec.Resources.GPU; gpu != nil {
		r[v1alpha1.GPUResourceName] = *resource.NewQuantity(int64(gpu.Count), resource.DecimalSI)
	}
	return r
}

// desiredTaints are the spec's taints and those Kubernetes put on the node (a spec taint
// of the same key and effect as one of those takes its place: a node may not carry two).
func desiredTaints(n *v1alpha1.Node, existing []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range n.Spec.Taints {
		out = append(out, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	for _, t := range existing {
		kept := slices.ContainsFunc(keptTaintPrefixes, func(p string) bool { return strings.HasPrefix(t.Key, p) })
		if kept && !slices.ContainsFunc(out, func(o corev1.Taint) bool { return o.MatchTaint(&t) }) {
			out = append(out, t)
		}
	}
	return out
}

// ensureUserNode creates the Node's node in the user cluster, or puts back what differs
// from the spec (labels, taints, cordon, capacity).
func (c *Controller) ensureUserNode(ctx context.Context, client kubernetes.Interface, n *v1alpha1.Node) (*corev1.Node, error) {
	nodes := client.CoreV1().Nodes()
	labels := desiredLabels(n)
	applied := strings.Join(slices.Sorted(maps.Keys(labels)), ",")
	node, err := nodes.Get(ctx, n.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Nodes take their status on create, as a kubelet registers itself.
		created, err := nodes.Create(ctx, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: labels,
				Annotations: map[string]string{v1alpha1.NodeUIDAnnotation: string(n.UID), appliedLabelsAnnotation: applied}},
			Spec:   corev1.NodeSpec{Taints: desiredTaints(n, nil), Unschedulable: n.Spec.Unschedulable},
			Status: corev1.NodeStatus{Capacity: capacity(n), Allocatable: capacity(n)},
		}, metav1.CreateOptions{FieldManager: fieldManager})
		if err != nil {
			return nil, fmt.Errorf("create node %s: %w", n.Name, err)
		}
		c.recorder.Eventf(n, corev1.EventTypeNormal, "NodeCreated", "Created node %s in cluster %s", n.Name, n.Spec.ClusterName)
		return created, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", n.Name, err)
	}
	if node.Annotations[v1alpha1.NodeUIDAnnotation] != string(n.UID) {
		return nil, &ownerConflict{name: n.Name}
	}
	want := node.DeepCopy()
	for _, k := range strings.Split(want.Annotations[appliedLabelsAnnotation], ",") {
		if _, still := labels[k]; !still {
			delete(want.Labels, k)
		}
	}
	if want.Labels == nil {
		want.Labels = map[string]string{}
	}
	maps.Copy(want.Labels, labels)
	want.Annotations[appliedLabelsAnnotation] = applied
	want.Spec.Taints = desiredTaints(n, node.Spec.Taints)
	want.Spec.Unschedulable = n.Spec.Unschedulable
	if !apiequality.Semantic.DeepEqual(want.ObjectMeta, node.ObjectMeta) || !apiequality.Semantic.DeepEqual(want.Spec, node.Spec) {
		if node, err = nodes.Update(ctx, want, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
			return nil, fmt.Errorf("update node %s: %w", n.Name, err)
		}
	}
	if capacity := capacity(n); !sameResources(node.Status.Capacity, capacity) || !sameResources(node.Status.Allocatable, capacity) {
		node = node.DeepCopy()
		node.Status.Capacity, node.Status.Allocatable = capacity, capacity
		if node, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
			return nil, fmt.Errorf("update the capacity of node %s: %w", n.Name, err)
		}
	}
	return node, nil
}

// fieldManager names the platform in the managed fields of what it writes.
const fieldManager = usercluster.FieldManager

func sameResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, q := range b {
		if have, ok := a[k]; !ok || have.Cmp(q) != 0 {
			return false
		}
	}
	return true
}

// deleteUserNode deletes the Node's node from the cluster, if it is the one made for it.
func deleteUserNode(ctx context.Context, client kubernetes.Interface, n *v1alpha1.Node) error {
	node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", n.Name, err)
	}
	if node.Annotations[v1alpha1.NodeUIDAnnotation] != string(n.UID) {
		return nil // another's node: never deleted for this Node
	}
	// Preconditioned on the UID read: a node of the same name made meanwhile stays.
	err = client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &node.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", n.Name, err)
	}
	return nil
}

// madeByPlatform tells whether a node may keep the node agent's mark: it carries a Node
// UID, as every node the platform makes does. One whose Node this store does not know
// (restored from an older backup, say) is left alone too: the platform never takes a
// tenant's node down on its own word.
func madeByPlatform(node *corev1.Node) bool {
	_, made := node.Annotations[v1alpha1.NodeUIDAnnotation]
	return made
}

// unmark takes the node agent's mark off a node the platform did not make, so that the
// agent does not keep it Ready: capacity in a cluster is what its Nodes say. The patch is
// preconditioned on the node's UID; a node of the same name made meanwhile keeps its mark.
func (c *Controller) unmark(ctx context.Context, client kubernetes.Interface, cl *v1alpha1.Cluster, node *corev1.Node) {
	patch := fmt.Sprintf(`{"metadata":{"uid":%q,"labels":{%q:null}}}`, node.UID, v1alpha1.ManagedByLabel)
	_, err := client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: fieldManager})
	// NotFound: gone; Conflict or Invalid: the UID precondition failed, another node.
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && !apierrors.IsInvalid(err) {
		klog.ErrorS(err, "Cannot take the node agent's mark off a node the platform did not make", "cluster", klog.KObj(cl), "node", node.Name)
		return
	}
	if err == nil {
		klog.InfoS("Took the node agent's mark off a node the platform did not make", "cluster", klog.KObj(cl), "node", node.Name)
		c.recorder.Eventf(cl, corev1.EventTypeWarning, "NodeUnmarked",
			"Node %s in the cluster carried %s=%s without a Node of the platform; the label was removed (add nodes as Node objects)",
			node.Name, v1alpha1.ManagedByLabel, v1alpha1.ManagedByValue)
	}
}
