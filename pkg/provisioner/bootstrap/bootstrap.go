// Package bootstrap puts the platform's objects into a new user cluster, whatever driver
// runs it: the namespaces ucs-system and ucs-users, the permission-group ClusterRoles,
// the proxy identity's rights, and one ServiceAccount per administrator bound to
// cluster-admin. Everything is server-side applied, so running it again is harmless and
// repairs drift.
package bootstrap

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/identity"
)

// FieldManager owns what the platform applies inside user clusters.
const FieldManager = "containerservice"

// PermissionGroups are the ClusterRoles project members are bound to, each aggregating
// the built-in role of the same name, so they grow with every API the cluster serves.
var PermissionGroups = map[v1alpha1.ProjectRole]string{
	v1alpha1.ProjectRoleAdmin: "ucs:admin",
	v1alpha1.ProjectRoleEdit:  "ucs:edit",
	v1alpha1.ProjectRoleView:  "ucs:view",
}

const (
	managedByLabel = "app.kubernetes.io/managed-by"
	proxyRole      = "ucs:proxy-impersonator"
	adminBinding   = "ucs:administrators"
)

// Apply brings the user cluster's platform objects to what the Cluster asks for.
func Apply(ctx context.Context, client kubernetes.Interface, c *v1alpha1.Cluster) error {
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	labels := map[string]string{managedByLabel: FieldManager}
	for _, ns := range []string{identity.SystemNamespace, identity.UsersNamespace} {
		if _, err := client.CoreV1().Namespaces().Apply(ctx, corev1ac.Namespace(ns).WithLabels(labels), opts); err != nil {
			return fmt.Errorf("apply namespace %s: %w", ns, err)
		}
	}
	for role, name := range PermissionGroups {
		cr := rbacv1ac.ClusterRole(name).WithLabels(labels).
			WithAggregationRule(rbacv1ac.AggregationRule().WithClusterRoleSelectors(
				metav1ac.LabelSelector().WithMatchLabels(map[string]string{"rbac.authorization.k8s.io/aggregate-to-" + string(role): "true"})))
		if _, err := client.RbacV1().ClusterRoles().Apply(ctx, cr, opts); err != nil {
			return fmt.Errorf("apply permission group %s: %w", name, err)
		}
	}

	// The proxy may impersonate ServiceAccounts of ucs-users and nothing else: a Role in
	// that namespace cannot reach users, groups or ServiceAccounts anywhere else.
	if _, err := client.RbacV1().Roles(identity.UsersNamespace).Apply(ctx, rbacv1ac.Role(proxyRole, identity.UsersNamespace).WithLabels(labels).
		WithRules(rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("serviceaccounts").WithVerbs("impersonate")), opts); err != nil {
		return fmt.Errorf("apply the proxy's role: %w", err)
	}
	if _, err := client.RbacV1().RoleBindings(identity.UsersNamespace).Apply(ctx, rbacv1ac.RoleBinding(proxyRole, identity.UsersNamespace).WithLabels(labels).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("Role").WithName(proxyRole)).
		WithSubjects(rbacv1ac.Subject().WithKind(rbacv1.UserKind).WithAPIGroup(rbacv1.GroupName).WithName(identity.ProxyUser)), opts); err != nil {
		return fmt.Errorf("bind the proxy's role: %w", err)
	}

	// One ServiceAccount per administrator user; groups are bound as groups.
	var subjects []*rbacv1ac.SubjectApplyConfiguration
	for _, a := range c.Spec.Administrators {
		switch a.Kind {
		case v1alpha1.SubjectKindUser:
			sa := identity.ServiceAccountName(a.Name)
			if _, err := client.CoreV1().ServiceAccounts(identity.UsersNamespace).Apply(ctx, corev1ac.ServiceAccount(sa, identity.UsersNamespace).
				WithLabels(labels).WithAnnotations(map[string]string{identity.UsernameAnnotation: a.Name}), opts); err != nil {
				return fmt.Errorf("apply the ServiceAccount of %s: %w", a.Name, err)
			}
			subjects = append(subjects, rbacv1ac.Subject().WithKind(rbacv1.ServiceAccountKind).WithNamespace(identity.UsersNamespace).WithName(sa))
		case v1alpha1.SubjectKindGroup:
			subjects = append(subjects, rbacv1ac.Subject().WithKind(rbacv1.GroupKind).WithAPIGroup(rbacv1.GroupName).WithName(a.Name))
		}
	}
	crb := rbacv1ac.ClusterRoleBinding(adminBinding).WithLabels(labels).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName("cluster-admin")).
		WithSubjects(subjects...)
	if _, err := client.RbacV1().ClusterRoleBindings().Apply(ctx, crb, opts); err != nil {
		return fmt.Errorf("bind administrators to cluster-admin: %w", err)
	}
	return nil
}
