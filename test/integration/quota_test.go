package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

const (
	clusterCount = corev1.ResourceName("count/clusters." + v1alpha1.GroupName)
	projectCount = corev1.ResourceName("count/projects." + v1alpha1.GroupName)
)

// TestTenantQuota bounds a tenant with a standard ResourceQuota on the host: creates
// beyond it are refused with 403 naming the quota (through kubectl too), and deleting an
// object frees its slot once the host's kube-controller-manager has counted again.
func TestTenantQuota(t *testing.T) {
	ctx, ns := testContext(t), env.NewTenant(t)
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "tenant-limits", Namespace: ns},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{clusterCount: resource.MustParse("2"), projectCount: resource.MustParse("1")}}}
	if _, err := env.Kube.CoreV1().ResourceQuotas(ns).Create(ctx, quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The host's kube-controller-manager counts our resources (through the aggregator) and
	// fills in the usage; until then the quota's state is unknown and creates are refused.
	waitUsed(ctx, t, ns, clusterCount, 0)
	waitUsed(ctx, t, ns, projectCount, 0)

	clusters := env.CS.ContainerserviceV1alpha1().Clusters(ns)
	for _, name := range []string{"one", "two"} {
		if _, err := clusters.Create(ctx, cluster(name, ns), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s within quota: %v", name, err)
		}
	}
	_, err := clusters.Create(ctx, cluster("three", ns), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota: tenant-limits") || !strings.Contains(err.Error(), string(clusterCount)) {
		t.Fatalf("a third cluster: %v, want 403 naming the quota", err)
	}
	manifest := []byte("apiVersion: " + v1alpha1.SchemeGroupVersion.String() + "\nkind: Cluster\nmetadata: {name: four, namespace: " + ns + "}\n")
	if out, err := env.Kubectl(ctx, manifest, "create", "-f", "-"); err == nil || !strings.Contains(err.Error(), "exceeded quota: tenant-limits") {
		t.Errorf("kubectl create over quota: %q %v", out, err)
	}
	if _, err := clusters.Get(ctx, "three", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused cluster was stored: %v", err)
	}

	projects := env.CS.ContainerserviceV1alpha1().Projects(ns)
	project := func(name string) *v1alpha1.Project {
		return &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	}
	if _, err := projects.Create(ctx, project("p1"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("first project: %v", err)
	}
	if _, err := projects.Create(ctx, project("p2"), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a second project over a quota of one: %v, want 403", err)
	}

	// Another tenant is not bound by this tenant's quota.
	other := env.NewTenant(t)
	for _, name := range []string{"a", "b", "c"} {
		if _, err := env.CS.ContainerserviceV1alpha1().Clusters(other).Create(ctx, cluster(name, other), metav1.CreateOptions{}); err != nil {
			t.Errorf("another tenant's cluster %s: %v", name, err)
		}
	}

	if err := clusters.Delete(ctx, "one", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUsed(ctx, t, ns, clusterCount, 1)
	if _, err := clusters.Create(ctx, cluster("three", ns), metav1.CreateOptions{}); err != nil {
		t.Errorf("create after a delete freed a slot: %v", err)
	}
}

// waitUsed waits until the quota's usage of the resource is want.
func waitUsed(ctx context.Context, t *testing.T, ns string, name corev1.ResourceName, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		q, err := env.Kube.CoreV1().ResourceQuotas(ns).Get(ctx, "tenant-limits", metav1.GetOptions{})
		if err == nil {
			if used, ok := q.Status.Used[name]; ok && used.Value() == want {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("quota usage of %s never reached %d: %+v %v", name, want, q.Status, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
