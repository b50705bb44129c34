package project

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

func testProject() *v1alpha1.Project {
	return &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "payments", Namespace: "acme"},
		Spec: v1alpha1.ProjectSpec{Namespace: "pay", Clusters: []string{"prod", "dev"}, Members: []v1alpha1.ProjectMember{
			{Kind: v1alpha1.SubjectKindUser, Name: "bob@example.com", Role: v1alpha1.ProjectRoleEdit},
			{Kind: v1alpha1.SubjectKindGroup, Name: "payments", Role: v1alpha1.ProjectRoleEdit},
			{Kind: v1alpha1.SubjectKindUser, Name: "alice@example.com", Role: v1alpha1.ProjectRoleEdit},
			{Kind: v1alpha1.SubjectKindUser, Name: "carol@example.com", Role: v1alpha1.ProjectRoleView},
		}}}
}

// TestBindingsGrowWithRolesNotPeople: one RoleBinding per role that has members, with
// every member of the role in it, in a stable order.
func TestBindingsGrowWithRolesNotPeople(t *testing.T) {
	got := desiredBindings(testProject())
	if len(got) != 2 || got["ucs:project:edit"] == nil || got["ucs:project:view"] == nil {
		t.Fatalf("bindings %v, want edit and view only", got)
	}
	edit := got["ucs:project:edit"]
	want := []rbacv1.Subject{
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "payments"},
		{Kind: rbacv1.ServiceAccountKind, Namespace: v1alpha1.UsersNamespace, Name: v1alpha1.ServiceAccountName("alice@example.com")},
		{Kind: rbacv1.ServiceAccountKind, Namespace: v1alpha1.UsersNamespace, Name: v1alpha1.ServiceAccountName("bob@example.com")},
	}
	if !slices.Equal(edit.Subjects, want) || edit.RoleRef.Name != "ucs:edit" || edit.Namespace != "pay" {
		t.Errorf("edit binding %+v", edit)
	}
}

// TestHostRulesNameEveryResource: a rule without resourceNames would grant every
// project or cluster of the tenant.
func TestHostRulesNameEveryResource(t *testing.T) {
	p := testProject()
	for _, clusters := range [][]string{nil, {"prod", "dev"}} {
		p.Spec.Clusters = clusters
		rules := hostRules(p)
		if len(rules) != 1+2*min(1, len(clusters)) {
			t.Errorf("clusters %v: %d rules", clusters, len(rules))
		}
		for _, r := range rules {
			if len(r.ResourceNames) == 0 {
				t.Errorf("clusters %v: a rule for every object: %+v", clusters, r)
			}
		}
	}
}

// TestProxyGroupsAreExact: the proxy may impersonate the named groups and nothing else;
// with none, the role has no rule at all.
func TestProxyGroupsAreExact(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	for _, groups := range [][]string{{"web", "payments"}, {"payments"}, nil} {
		if err := syncProxyGroups(ctx, client, sets.New(groups...)); err != nil {
			t.Fatal(err)
		}
		role, err := client.RbacV1().ClusterRoles().Get(ctx, ProxyGroupsRole, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(groups) == 0 {
			if len(role.Rules) != 0 {
				t.Errorf("no groups, yet rules %+v", role.Rules)
			}
			continue
		}
		if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].ResourceNames, sets.List(sets.New(groups...))) || !slices.Equal(role.Rules[0].Resources, []string{"groups"}) {
			t.Errorf("groups %v: rules %+v", groups, role.Rules)
		}
	}
	b, err := client.RbacV1().ClusterRoleBindings().Get(ctx, ProxyGroupsRole, metav1.GetOptions{})
	if err != nil || len(b.Subjects) != 1 || b.Subjects[0].Name != v1alpha1.ProxyUser {
		t.Errorf("binding %+v (%v)", b, err)
	}
}

// TestServiceAccountsPruned: ours nobody uses go, others are left alone, missing ones
// come with the username annotation.
func TestServiceAccountsPruned(t *testing.T) {
	ctx := context.Background()
	old := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ServiceAccountName("old@example.com"), Namespace: v1alpha1.UsersNamespace, Labels: managed}}
	theirs := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot", Namespace: v1alpha1.UsersNamespace}}
	client := fake.NewClientset(old, theirs)
	if err := syncServiceAccounts(ctx, client, sets.New("alice@example.com")); err != nil {
		t.Fatal(err)
	}
	list, err := client.CoreV1().ServiceAccounts(v1alpha1.UsersNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, sa := range list.Items {
		got[sa.Name] = sa.Annotations[v1alpha1.UsernameKey]
	}
	want := map[string]string{"robot": "", v1alpha1.ServiceAccountName("alice@example.com"): "alice@example.com"}
	if len(got) != len(want) || got["robot"] != "" || got[v1alpha1.ServiceAccountName("alice@example.com")] != "alice@example.com" {
		t.Errorf("ServiceAccounts %v, want %v", got, want)
	}
}

// TestOnlyTheProjectsOwnNamespaceIsDeleted: with namespacePolicy Delete, leaving a cluster
// deletes the namespace the platform made for this project (its UID), and never one that
// was there before, nor one an earlier project of the same name made, whatever their labels.
func TestOnlyTheProjectsOwnNamespaceIsDeleted(t *testing.T) {
	p := testProject()
	p.UID = "uid-now"
	p.Spec.NamespacePolicy = v1alpha1.ProjectNamespaceDelete
	labels := projectLabels(p)
	for name, ns := range map[string]*corev1.Namespace{
		"made for it":          {ObjectMeta: metav1.ObjectMeta{Name: "pay", Labels: labels, Annotations: map[string]string{v1alpha1.ProjectUIDAnnotation: "uid-now"}}},
		"there before":         {ObjectMeta: metav1.ObjectMeta{Name: "pay", Labels: labels}},
		"an earlier project's": {ObjectMeta: metav1.ObjectMeta{Name: "pay", Labels: labels, Annotations: map[string]string{v1alpha1.ProjectUIDAnnotation: "uid-before"}}},
	} {
		t.Run(name, func(t *testing.T) {
			client := fake.NewSimpleClientset(ns)
			kept, err := unplace(context.Background(), client, p, "pay")
			if err != nil {
				t.Fatal(err)
			}
			_, getErr := client.CoreV1().Namespaces().Get(context.Background(), "pay", metav1.GetOptions{})
			wantDeleted := name == "made for it"
			if deleted := getErr != nil; deleted != wantDeleted || kept == wantDeleted {
				t.Errorf("deleted %v (kept reported %v), want deleted %v", deleted, kept, wantDeleted)
			}
		})
	}
	// What place creates carries the UID.
	client := fake.NewSimpleClientset()
	_ = place(context.Background(), client, p, func(string) bool { return false }) // fails later on the permission groups; the namespace is made first
	ns, err := client.CoreV1().Namespaces().Get(context.Background(), "pay", metav1.GetOptions{})
	if err != nil || ns.Annotations[v1alpha1.ProjectUIDAnnotation] != "uid-now" {
		t.Errorf("created namespace %+v (%v): want the project's UID", ns, err)
	}
}

// TestANamespaceHeldByAnotherProjectIsNotTouched: two projects racing for one namespace
// of a cluster: the second neither relabels it nor writes or removes bindings there.
func TestANamespaceHeldByAnotherProjectIsNotTouched(t *testing.T) {
	first, second := testProject(), testProject()
	second.Name, second.UID = "payments-2", "uid-2"
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pay", Labels: projectLabels(first)}}
	theirs := desiredBindings(first)["ucs:project:edit"]
	client := fake.NewSimpleClientset(ns, theirs)
	live := func(name string) bool { return name == first.Name }
	if err := place(context.Background(), client, second, live); err == nil || !strings.Contains(err.Error(), "belongs to project payments") {
		t.Errorf("placing the second project: %v", err)
	}
	if kept, err := unplace(context.Background(), client, second, "pay"); err != nil || !kept {
		t.Errorf("the second project leaving: kept %v, %v", kept, err)
	}
	got, err := client.CoreV1().Namespaces().Get(context.Background(), "pay", metav1.GetOptions{})
	if err != nil || got.Labels[v1alpha1.ProjectLabel] != first.Name {
		t.Errorf("namespace %+v (%v), want the first project's", got, err)
	}
	if b, err := client.RbacV1().RoleBindings("pay").Get(context.Background(), "ucs:project:edit", metav1.GetOptions{}); err != nil || !slices.Equal(b.Subjects, theirs.Subjects) {
		t.Errorf("the first project's binding changed: %+v (%v)", b, err)
	}
}

// TestRemovalDoesNotWaitForPermissionGroups: while a permission group is not aggregated
// (a controller manager down), a member taken out of the project is taken out of the
// binding at once; nobody is added.
func TestRemovalDoesNotWaitForPermissionGroups(t *testing.T) {
	p := testProject()
	before := desiredBindings(p)["ucs:project:edit"]
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pay", Labels: projectLabels(p)}}
	client := fake.NewSimpleClientset(ns, before, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "ucs:edit"}}, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "ucs:view"}})
	p.Spec.Members = slices.DeleteFunc(p.Spec.Members, func(m v1alpha1.ProjectMember) bool { return m.Name == "bob@example.com" })
	p.Spec.Members = append(p.Spec.Members, v1alpha1.ProjectMember{Kind: v1alpha1.SubjectKindUser, Name: "new@example.com", Role: v1alpha1.ProjectRoleEdit})
	if err := place(context.Background(), client, p, func(string) bool { return false }); err == nil || !strings.Contains(err.Error(), "not aggregated") {
		t.Errorf("place: %v, want the permission group not aggregated", err)
	}
	b, err := client.RbacV1().RoleBindings("pay").Get(context.Background(), "ucs:project:edit", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range b.Subjects {
		if s.Name == v1alpha1.ServiceAccountName("bob@example.com") || s.Name == v1alpha1.ServiceAccountName("new@example.com") {
			t.Errorf("subjects %v: bob must be gone, new not added yet", b.Subjects)
		}
	}
	if len(b.Subjects) != len(before.Subjects)-1 {
		t.Errorf("subjects %v, want the others kept", b.Subjects)
	}
}

// TestHostObjectsTheProjectDidNotMakeAreLeftAlone: a Role or RoleBinding of the project's
// host name that the platform did not make is neither rewritten nor deleted.
func TestHostObjectsTheProjectDidNotMakeAreLeftAlone(t *testing.T) {
	p := testProject()
	theirs := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: hostRoleName(p), Namespace: "acme"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}}
	host := fake.NewSimpleClientset(theirs)
	c := &Controller{host: host}
	if err := c.applyHostAccess(context.Background(), p); err == nil || !strings.Contains(err.Error(), "did not make") {
		t.Errorf("apply: %v", err)
	}
	if err := c.removeHostAccess(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	got, err := host.RbacV1().Roles("acme").Get(context.Background(), hostRoleName(p), metav1.GetOptions{})
	if err != nil || len(got.Rules) != 1 || got.Rules[0].Verbs[0] != "*" {
		t.Errorf("their role changed or went: %+v (%v)", got, err)
	}
}

// TestPlacementBacksOff: a placement that keeps failing is tried again after 1 s, then
// twice as long each time up to 30 s, per project and cluster; a success starts over.
func TestPlacementBacksOff(t *testing.T) {
	c := &Controller{placements: flowcontrol.NewBackOff(placeRetry, maxPlaceRetry)}
	var got []time.Duration
	for range 7 {
		got = append(got, c.placeFailed("p1", "prod"))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("retries %v, want %v", got, want)
	}
	if d := c.placeFailed("p1", "dev"); d != time.Second {
		t.Errorf("another cluster's first retry is %s, want 1s", d)
	}
	c.placed("p1", "prod")
	if d := c.placeFailed("p1", "prod"); d != time.Second {
		t.Errorf("the first retry after a success is %s, want 1s", d)
	}
}
