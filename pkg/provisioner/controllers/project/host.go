package project

import (
	"context"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// hostRoleName is the Role and RoleBinding, in the tenant's namespace on the host, that
// let a project's members reach the project and its clusters.
func hostRoleName(p *v1alpha1.Project) string { return "containerservice:project:" + p.Name }

// hostRules grant get on the project, and get, proxy and kubeconfig on exactly its
// clusters: nothing when it has none (rules without resourceNames would mean every one).
func hostRules(p *v1alpha1.Project) []rbacv1.PolicyRule {
	rules := []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupName}, Resources: []string{"projects"}, Verbs: []string{"get"}, ResourceNames: []string{p.Name}}}
	if len(p.Spec.Clusters) == 0 {
		return rules
	}
	clusters := slices.Sorted(slices.Values(p.Spec.Clusters))
	return append(rules,
		rbacv1.PolicyRule{APIGroups: []string{v1alpha1.GroupName}, Resources: []string{"clusters", "clusters/kubeconfig"}, Verbs: []string{"get"}, ResourceNames: clusters},
		// Every verb an HTTP method through the proxy maps to.
		rbacv1.PolicyRule{APIGroups: []string{v1alpha1.GroupName}, Resources: []string{"clusters/proxy"},
			Verbs: []string{"get", "create", "update", "patch", "delete"}, ResourceNames: clusters})
}

func hostSubjects(p *v1alpha1.Project) []rbacv1.Subject {
	var subjects []rbacv1.Subject
	for _, m := range p.Spec.Members {
		kind := rbacv1.UserKind
		if m.Kind == v1alpha1.SubjectKindGroup {
			kind = rbacv1.GroupKind
		}
		subjects = append(subjects, rbacv1.Subject{Kind: kind, APIGroup: rbacv1.GroupName, Name: m.Name})
	}
	return subjects
}

// applyHostAccess keeps the project's Role and RoleBinding on the host.
func (c *Controller) applyHostAccess(ctx context.Context, p *v1alpha1.Project) error {
	if c.host == nil {
		return nil
	}
	name, labels := hostRoleName(p), projectLabels(p)
	roles := c.host.RbacV1().Roles(p.Namespace)
	role, err := roles.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil && !hasLabels(role.Labels, labels):
		err = fmt.Errorf("a Role named %s that the platform did not make is in the way; it is left alone", name)
	case apierrors.IsNotFound(err):
		_, err = roles.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Rules: hostRules(p)}, metav1.CreateOptions{FieldManager: fieldManager})
	case err == nil && !equalRules(role.Rules, hostRules(p)):
		role.Rules = hostRules(p)
		_, err = roles.Update(ctx, role, metav1.UpdateOptions{FieldManager: fieldManager})
	}
	if err != nil {
		return fmt.Errorf("host role of project %s/%s: %w", p.Namespace, p.Name, err)
	}
	bindings := c.host.RbacV1().RoleBindings(p.Namespace)
	want := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}, Subjects: hostSubjects(p)}
	binding, err := bindings.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil && !hasLabels(binding.Labels, labels):
		err = fmt.Errorf("a RoleBinding named %s that the platform did not make is in the way; it is left alone", name)
	case apierrors.IsNotFound(err):
		_, err = bindings.Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
	case err == nil && (binding.RoleRef != want.RoleRef):
		if err = bindings.Delete(ctx, name, metav1.DeleteOptions{}); err == nil {
			_, err = bindings.Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
		}
	case err == nil && !slices.Equal(binding.Subjects, want.Subjects):
		binding.Subjects = want.Subjects
		_, err = bindings.Update(ctx, binding, metav1.UpdateOptions{FieldManager: fieldManager})
	}
	if err != nil {
		return fmt.Errorf("host binding of project %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// removeHostAccess removes them once the project is deleted.
func (c *Controller) removeHostAccess(ctx context.Context, p *v1alpha1.Project) error {
	if c.host == nil {
		return nil
	}
	// Only what the platform made for this project goes (its labels), each deletion
	// preconditioned on the object read, so that one made meanwhile by someone else stays.
	name, labels := hostRoleName(p), projectLabels(p)
	bindings, roles := c.host.RbacV1().RoleBindings(p.Namespace), c.host.RbacV1().Roles(p.Namespace)
	if b, err := bindings.Get(ctx, name, metav1.GetOptions{}); err == nil && hasLabels(b.Labels, labels) {
		if err := bindings.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &b.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove the host binding of project %s/%s: %w", p.Namespace, p.Name, err)
		}
	} else if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("read the host binding of project %s/%s: %w", p.Namespace, p.Name, err)
	}
	if r, err := roles.Get(ctx, name, metav1.GetOptions{}); err == nil && hasLabels(r.Labels, labels) {
		if err := roles.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &r.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove the host role of project %s/%s: %w", p.Namespace, p.Name, err)
		}
	} else if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("read the host role of project %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}
