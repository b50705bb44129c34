// Package usercluster puts the platform's objects into a user cluster, whatever driver runs
// it: the namespaces ucs-system and ucs-users, the permission-group ClusterRoles, the
// proxy identity's rights, the binding of each administrator's ServiceAccount (which the
// project controller makes) to cluster-admin, and the break-glass group's binding.
// Everything but that last binding is server-side applied on every pass, so running it
// again is harmless and repairs drift; the break-glass binding is created once, so that
// deleting it (revoking every break-glass credential) sticks.
package usercluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// FieldManager owns what the platform applies inside user clusters.
const FieldManager = "containerservice"

const (
	proxyRole       = v1alpha1.PlatformPrefix + "proxy-impersonator"
	proxyExtrasRole = v1alpha1.PlatformPrefix + "proxy-username-extra"
	adminBinding    = v1alpha1.PlatformPrefix + "administrators"
	// stateConfigMap (in ucs-system) remembers what the platform did once in the cluster.
	stateConfigMap = "ucs-platform"
	// breakGlassCreated is its key saying the break-glass binding was created.
	breakGlassCreated = "breakGlassBindingCreated"
)

// Apply brings the user cluster's platform objects to what the Cluster asks for.
func Apply(ctx context.Context, client kubernetes.Interface, c *v1alpha1.Cluster) error {
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	labels := map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}
	for _, ns := range []string{v1alpha1.SystemNamespace, v1alpha1.UsersNamespace} {
		if _, err := client.CoreV1().Namespaces().Apply(ctx, corev1ac.Namespace(ns).WithLabels(labels), opts); err != nil {
			return fmt.Errorf("apply namespace %s: %w", ns, err)
		}
	}
	for role, name := range v1alpha1.PermissionGroups {
		cr := rbacv1ac.ClusterRole(name).WithLabels(labels).
			WithAggregationRule(rbacv1ac.AggregationRule().WithClusterRoleSelectors(
				metav1ac.LabelSelector().WithMatchLabels(map[string]string{"rbac.authorization.k8s.io/aggregate-to-" + string(role): "true"})))
		if _, err := client.RbacV1().ClusterRoles().Apply(ctx, cr, opts); err != nil {
			return fmt.Errorf("apply permission group %s: %w", name, err)
		}
	}

	// The proxy may impersonate ServiceAccounts of ucs-users and nothing else: a Role in
	// that namespace cannot reach users, groups or ServiceAccounts anywhere else.
	if _, err := client.RbacV1().Roles(v1alpha1.UsersNamespace).Apply(ctx, rbacv1ac.Role(proxyRole, v1alpha1.UsersNamespace).WithLabels(labels).
		WithRules(rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("serviceaccounts").WithVerbs("impersonate")), opts); err != nil {
		return fmt.Errorf("apply the proxy's role: %w", err)
	}
	if _, err := client.RbacV1().RoleBindings(v1alpha1.UsersNamespace).Apply(ctx, rbacv1ac.RoleBinding(proxyRole, v1alpha1.UsersNamespace).WithLabels(labels).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("Role").WithName(proxyRole)).
		WithSubjects(rbacv1ac.Subject().WithKind(rbacv1.UserKind).WithAPIGroup(rbacv1.GroupName).WithName(v1alpha1.ProxyUser)), opts); err != nil {
		return fmt.Errorf("bind the proxy's role: %w", err)
	}

	// The proxy also tells the cluster who the person behind a ServiceAccount is, in an
	// impersonated extra its audit log records; impersonating that extra is cluster-wide.
	if _, err := client.RbacV1().ClusterRoles().Apply(ctx, rbacv1ac.ClusterRole(proxyExtrasRole).WithLabels(labels).
		WithRules(rbacv1ac.PolicyRule().WithAPIGroups("authentication.k8s.io").WithResources("userextras/"+v1alpha1.UsernameKey).WithVerbs("impersonate")), opts); err != nil {
		return fmt.Errorf("apply the proxy's extras role: %w", err)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Apply(ctx, rbacv1ac.ClusterRoleBinding(proxyExtrasRole).WithLabels(labels).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(proxyExtrasRole)).
		WithSubjects(rbacv1ac.Subject().WithKind(rbacv1.UserKind).WithAPIGroup(rbacv1.GroupName).WithName(v1alpha1.ProxyUser)), opts); err != nil {
		return fmt.Errorf("bind the proxy's extras role: %w", err)
	}

	if err := applyNodeAgentRole(ctx, client, labels, opts); err != nil {
		return err
	}

	// Each administrator user is bound through their ServiceAccount; groups are bound as
	// groups. The ServiceAccounts themselves have one owner, the project controller's
	// identities (it counts administrators among the people of a cluster): two writers
	// pruned and rewrote each other's. A binding may name a ServiceAccount not made yet,
	// and the proxy's impersonation of it does not need the object.
	var subjects []*rbacv1ac.SubjectApplyConfiguration
	for _, a := range c.Spec.Administrators {
		switch a.Kind {
		case v1alpha1.SubjectKindUser:
			sa := v1alpha1.ServiceAccountName(a.Name)
			subjects = append(subjects, rbacv1ac.Subject().WithKind(rbacv1.ServiceAccountKind).WithNamespace(v1alpha1.UsersNamespace).WithName(sa))
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
	return createBreakGlassBindingOnce(ctx, client, labels)
}

// createBreakGlassBindingOnce binds the break-glass group to cluster-admin the first
// time, and remembers it in ucs-system, so that an operator who deletes the binding
// (revoking every break-glass credential without a rotation) is not overruled. A
// cluster bootstrapped by an earlier version gets it on its next pass.
func createBreakGlassBindingOnce(ctx context.Context, client kubernetes.Interface, labels map[string]string) error {
	cms := client.CoreV1().ConfigMaps(v1alpha1.SystemNamespace)
	state, err := cms.Get(ctx, stateConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		state = nil
	case err != nil:
		return fmt.Errorf("read the platform's state: %w", err)
	}
	if state != nil && state.Data[breakGlassCreated] == "true" {
		return nil
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.BreakGlassGroup, Labels: labels, Annotations: map[string]string{
			"containerservice.ucloudstack.io/description": "Break-glass (adminkubeconfig) credentials carry the group " + v1alpha1.BreakGlassGroup +
				". Delete this binding to revoke all of them at once; the platform does not create it again.",
		}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: v1alpha1.BreakGlassGroup}},
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bind the break-glass group to cluster-admin: %w", err)
	}
	cm := corev1ac.ConfigMap(stateConfigMap, v1alpha1.SystemNamespace).WithLabels(labels).WithData(map[string]string{breakGlassCreated: "true"})
	if _, err := cms.Apply(ctx, cm, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("record the break-glass binding: %w", err)
	}
	return nil
}

// nodeAgentRole is what the node agent (v1alpha1.NodeAgentUser, kwok on the local
// driver) needs to play the kubelets of the platform's nodes, and no more: read nodes and
// pods, report their status, finish deleting pods being deleted, record events, and keep
// the node leases (in kube-node-lease only). It cannot change a node's or a pod's spec or
// labels, nor touch any other object.
const nodeAgentRole = v1alpha1.NodeAgentUser

func applyNodeAgentRole(ctx context.Context, client kubernetes.Interface, labels map[string]string, opts metav1.ApplyOptions) error {
	rule := func(group string, resources []string, verbs ...string) *rbacv1ac.PolicyRuleApplyConfiguration {
		return rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources(resources...).WithVerbs(verbs...)
	}
	read := []string{"get", "list", "watch"}
	cr := rbacv1ac.ClusterRole(nodeAgentRole).WithLabels(labels).WithRules(
		rule("", []string{"nodes", "pods"}, read...),
		rule("", []string{"nodes/status", "pods/status"}, "update", "patch"),
		rule("", []string{"pods"}, "delete"),
		rule("", []string{"events"}, "create", "patch", "update"),
		rule("events.k8s.io", []string{"events"}, "create", "patch", "update"),
	)
	leases := rbacv1ac.Role(nodeAgentRole, corev1.NamespaceNodeLease).WithLabels(labels).WithRules(
		rule("coordination.k8s.io", []string{"leases"}, append(read, "create", "update", "patch")...))
	if _, err := client.RbacV1().Roles(corev1.NamespaceNodeLease).Apply(ctx, leases, opts); err != nil {
		return fmt.Errorf("apply the node agent's lease role: %w", err)
	}
	if _, err := client.RbacV1().RoleBindings(corev1.NamespaceNodeLease).Apply(ctx, rbacv1ac.RoleBinding(nodeAgentRole, corev1.NamespaceNodeLease).WithLabels(labels).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("Role").WithName(nodeAgentRole)).
		WithSubjects(rbacv1ac.Subject().WithKind(rbacv1.UserKind).WithAPIGroup(rbacv1.GroupName).WithName(v1alpha1.NodeAgentUser)), opts); err != nil {
		return fmt.Errorf("bind the node agent's lease role: %w", err)
	}
	if _, err := client.RbacV1().ClusterRoles().Apply(ctx, cr, opts); err != nil {
		return fmt.Errorf("apply the node agent's role: %w", err)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Apply(ctx, rbacv1ac.ClusterRoleBinding(nodeAgentRole).WithLabels(labels).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(nodeAgentRole)).
		WithSubjects(rbacv1ac.Subject().WithKind(rbacv1.UserKind).WithAPIGroup(rbacv1.GroupName).WithName(v1alpha1.NodeAgentUser)), opts); err != nil {
		return fmt.Errorf("bind the node agent's role: %w", err)
	}
	return nil
}

// Usable says what a workload still waits for in a cluster whose control plane runs and
// whose platform objects are applied, or "" when nothing: the default ServiceAccount of
// namespace default (a pod is refused without it), the root CA published there (every
// pod's service account token volume mounts it), and each permission group aggregated
// (a member bound to a group still empty can do nothing). kube-controller-manager makes
// all of them within a second or two of its start; until then the cluster is not Ready.
func Usable(ctx context.Context, client kubernetes.Interface) (string, error) {
	var waiting []string
	if _, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		waiting = append(waiting, "the default ServiceAccount of namespace default")
	} else if err != nil {
		return "", fmt.Errorf("read the default ServiceAccount: %w", err)
	}
	if _, err := client.CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(ctx, rootCAConfigMap, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		waiting = append(waiting, "the root CA (ConfigMap "+rootCAConfigMap+") in namespace default")
	} else if err != nil {
		return "", fmt.Errorf("read the root CA ConfigMap: %w", err)
	}
	groups := slices.Sorted(maps.Values(v1alpha1.PermissionGroups))
	for _, name := range groups {
		cr, err := client.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) || (err == nil && len(cr.Rules) == 0):
			waiting = append(waiting, "permission group "+name+" to be aggregated")
		case err != nil:
			return "", fmt.Errorf("read permission group %s: %w", name, err)
		}
	}
	return strings.Join(waiting, ", "), nil
}

// rootCAConfigMap is where kube-controller-manager publishes the cluster's CA in every
// namespace.
const rootCAConfigMap = "kube-root-ca.crt"
