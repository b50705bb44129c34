package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// TestReadyMeansUsable: the instant a fresh cluster's Ready condition turns True (seen
// on a watch), a tenant's first pod is created, on several fresh clusters in a row, and
// it is never refused (kube-controller-manager may not have made the default
// ServiceAccount yet, and a pod without it is refused). Independent of timing: the
// ServiceAccount and the root CA were created no later than Ready turned True, and the
// permission groups are aggregated.
func TestReadyMeansUsable(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	clusters := env.CS.ContainerserviceV1alpha1().Clusters(ns)
	for i := range 3 {
		name := fmt.Sprintf("fresh%d", i)
		w, err := clusters.Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := clusters.Create(ctx, newCluster(name, ns), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = clusters.Delete(ctx, name, metav1.DeleteOptions{}) })
		var ready *metav1.Condition
		for ready == nil {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Fatalf("%s: the watch ended before Ready", name)
				}
				if c, isCluster := ev.Object.(*v1alpha1.Cluster); isCluster && c.Name == name && meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ClusterConditionReady) {
					ready = meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ClusterConditionReady)
				}
			case <-ctx.Done():
				t.Fatalf("%s: not Ready in time", name)
			}
		}
		w.Stop()
		_, cfg := adminKubeconfig(ctx, t, env.CS, ns, name, 600)
		user := kubernetes.NewForConfigOrDie(cfg)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "first"}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
		if _, err := user.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Errorf("%s: the first pod, created the instant the cluster was Ready, was refused: %v", name, err)
		}
		sa, err := user.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err != nil || sa.CreationTimestamp.After(ready.LastTransitionTime.Time) {
			t.Errorf("%s: the default ServiceAccount was made after Ready (%v, Ready at %v): %v", name, sa.CreationTimestamp, ready.LastTransitionTime, err)
		}
		ca, err := user.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil || ca.CreationTimestamp.After(ready.LastTransitionTime.Time) {
			t.Errorf("%s: the root CA was published after Ready (%v, Ready at %v): %v", name, ca.CreationTimestamp, ready.LastTransitionTime, err)
		}
		for _, group := range v1alpha1.PermissionGroups {
			cr, err := user.RbacV1().ClusterRoles().Get(ctx, group, metav1.GetOptions{})
			if err != nil || len(cr.Rules) == 0 {
				t.Errorf("%s: permission group %s not aggregated when Ready: %v", name, group, err)
			}
		}
		if t.Failed() {
			t.Logf("Ready: %s", strings.TrimSpace(ready.Message))
		}
	}
}
