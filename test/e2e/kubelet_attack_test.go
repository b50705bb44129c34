package e2e

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestAttackKubeletEndpointOnTheHost: a tenant's cluster-admin registers a node whose
// kubelet endpoint is another service on the platform's machine (the host kube-apiserver,
// our server, another tenant's kube-apiserver) and asks its own kube-apiserver to proxy
// there. kube-apiserver refuses loopback node addresses for nodes/proxy, and presents its
// kubelet client certificate only to servers with a certificate from its own cluster CA
// (--kubelet-certificate-authority): every attempt is refused and nothing is answered by
// the target.
func TestAttackKubeletEndpointOnTheHost(t *testing.T) {
	a := setUpArena(t)
	ctx := testContext(t, 3*time.Minute)
	_, cfg := adminKubeconfig(ctx, t, env.CS, a.ns, "target", 600)
	client := kubernetes.NewForConfigOrDie(cfg)
	port := func(raw string) int {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(u.Port())
		return p
	}
	targets := map[string]int{
		"host kube-apiserver":         port(env.AdminConfig.Host),
		"containerservice-apiserver":  port(a.directURL),
		"another cluster's apiserver": clusterPorts(t, a.ns, "other")["apiserver"],
	}
	for what, p := range targets {
		name := "evil-" + strconv.Itoa(p)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(p)}}}}
		if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		body, err := client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/" + name + "/proxy/version").DoRaw(ctx)
		if err == nil || !(strings.Contains(err.Error(), "certificate") || strings.Contains(string(body), "address not allowed")) {
			t.Errorf("%s through nodes/proxy: %v, answered %q; want it refused", what, err, body)
		}
		for _, leak := range []string{"gitVersion", "Unauthorized", "Forbidden"} {
			if strings.Contains(string(body), leak) {
				t.Errorf("%s answered through nodes/proxy: %q", what, body)
			}
		}
	}
}
