package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// attackNodeAgent tries, as the cluster's administrator and as anyone on the platform's
// machine, what the node agent (kwok, running as the platform's user) must not give: a
// command run or a file read on the machine through kubectl exec or logs, its profiling
// endpoints, rights beyond playing kubelets, and a node handed to the agent by a label.
// pod runs on one of the platform's nodes of the cluster.
func attackNodeAgent(ctx context.Context, t *testing.T, ns, cluster string, user kubernetes.Interface, pod *corev1.Pod) {
	t.Helper()
	// kubectl exec and logs reach the agent's kubelet endpoint, which serves neither.
	kubeconfig, _ := adminKubeconfig(ctx, t, env.CS, ns, cluster, 600)
	if out, err := env.KubectlAs(ctx, kubeconfig, nil, "exec", "-n", pod.Namespace, pod.Name, "--", "id"); err == nil || strings.Contains(out, "uid=") {
		t.Errorf("kubectl exec into a pod of a platform node ran something: %q (%v)", out, err)
	}
	if out, err := env.KubectlAs(ctx, kubeconfig, nil, "logs", "-n", pod.Namespace, pod.Name); err == nil {
		t.Errorf("kubectl logs of a pod of a platform node were served: %q", out)
	}

	// Straight at the agent on the machine: no profiling, no debugging handlers.
	port := clusterPorts(t, ns, cluster)["node-agent"]
	if port == 0 {
		t.Fatal("the cluster has no node agent port")
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=2", fmt.Sprintf("/containerLogs/%s/%s/%s", pod.Namespace, pod.Name, pod.Spec.Containers[0].Name)} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", port, path), nil)
		resp, err := insecure.Do(req)
		if err != nil {
			t.Fatalf("reach the node agent: %v", err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "goroutine") {
			t.Errorf("the node agent serves %s: %d %q", path, resp.StatusCode, body)
		}
	}

	// The agent's identity plays kubelets and nothing else.
	for _, tc := range []struct {
		attrs authorizationv1.ResourceAttributes
		allow bool
	}{
		{authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Subresource: "status"}, true},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: corev1.NamespaceNodeLease}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Resource: "nodes"}, false},
		{authorizationv1.ResourceAttributes{Verb: "patch", Resource: "pods", Namespace: "default"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system"}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "kube-system"}, false},
	} {
		sar, err := user.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: v1alpha1.NodeAgentUser, ResourceAttributes: &tc.attrs}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tc.allow {
			t.Errorf("node agent %s %s/%s in %q: allowed %v, want %v", tc.attrs.Verb, tc.attrs.Resource, tc.attrs.Subresource, tc.attrs.Namespace, sar.Status.Allowed, tc.allow)
		}
	}

	// A node the administrator labels for the agent inside the cluster loses the mark:
	// capacity is what the cluster's Nodes say.
	rogue := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rogue", Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}},
		Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1000")}}}
	if _, err := user.CoreV1().Nodes().Create(ctx, rogue, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the rogue node loses the agent's mark", func() (bool, error) {
		got, err := user.CoreV1().Nodes().Get(ctx, "rogue", metav1.GetOptions{})
		return err == nil && got.Labels[v1alpha1.ManagedByLabel] == "", err
	})
	eventually(ctx, t, "the unmarking is reported on the cluster", func() (bool, error) {
		events, err := env.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=NodeUnmarked,involvedObject.name=" + cluster})
		return err == nil && len(events.Items) > 0, err
	})
	if err := user.CoreV1().Nodes().Delete(ctx, "rogue", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// The agent's mark cannot be asked for in a Node's spec.
	n := workerNode(ns, cluster, "sneaky", 0)
	n.Spec.Labels = map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}
	_, err := env.CS.ContainerserviceV1alpha1().Nodes(ns).Create(ctx, n, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.labels["+v1alpha1.ManagedByLabel+"]") {
		t.Errorf("a Node asking for the agent's mark: %v, want it refused naming the label", err)
	}
}
