package usercluster

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

func TestUsableNamesWhatAWorkloadWaitsFor(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	waiting, err := Usable(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"default ServiceAccount", "kube-root-ca.crt", "permission group ucs:admin", "ucs:edit", "ucs:view"} {
		if !strings.Contains(waiting, want) {
			t.Errorf("an empty cluster waits for %q, which does not name %q", waiting, want)
		}
	}

	objs := []runtime.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: "default"}},
	}
	rule := []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}
	for _, name := range v1alpha1.PermissionGroups {
		objs = append(objs, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rule})
	}
	// One group made by the platform but not aggregated yet: no rules.
	objs[len(objs)-1].(*rbacv1.ClusterRole).Rules = nil
	empty := objs[len(objs)-1].(*rbacv1.ClusterRole).Name
	client = fake.NewClientset(objs...)
	if waiting, err = Usable(ctx, client); err != nil || waiting != "permission group "+empty+" to be aggregated" {
		t.Errorf("waiting %q (%v), want only %s", waiting, err, empty)
	}
	if err := client.RbacV1().ClusterRoles().Delete(ctx, empty, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: empty}, Rules: rule}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if waiting, err = Usable(ctx, client); err != nil || waiting != "" {
		t.Errorf("everything there: waiting %q (%v)", waiting, err)
	}

	// A cluster that does not answer is an error, not something to wait for.
	client.PrependReactor("get", "serviceaccounts", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	if _, err := Usable(ctx, client); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %v, want the cluster's", err)
	}
}
