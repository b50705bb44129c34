package project

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/usercluster"
)

const fieldManager = usercluster.FieldManager

// roles in a stable order, so that bindings are written the same way each time.
var roles = []v1alpha1.ProjectRole{v1alpha1.ProjectRoleAdmin, v1alpha1.ProjectRoleEdit, v1alpha1.ProjectRoleView}

// bindingName is the RoleBinding of one role of a project in its namespace.
func bindingName(role v1alpha1.ProjectRole) string {
	return v1alpha1.PlatformPrefix + "project:" + string(role)
}

// projectLabels mark what the platform put into a cluster for a project.
func projectLabels(p *v1alpha1.Project) map[string]string {
	return map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.ProjectLabel: p.Name}
}

// desiredBindings are the project's RoleBindings: one per role that has members, binding
// the role's permission group to its members' ServiceAccounts and groups.
func desiredBindings(p *v1alpha1.Project) map[string]*rbacv1.RoleBinding {
	out := map[string]*rbacv1.RoleBinding{}
	for _, role := range roles {
		var subjects []rbacv1.Subject
		for _, m := range p.Spec.Members {
			if m.Role != role {
				continue
			}
			switch m.Kind {
			case v1alpha1.SubjectKindUser:
				subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: v1alpha1.UsersNamespace, Name: v1alpha1.ServiceAccountName(m.Name)})
			case v1alpha1.SubjectKindGroup:
				subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: m.Name})
			}
		}
		if len(subjects) == 0 {
			continue
		}
		slices.SortFunc(subjects, func(a, b rbacv1.Subject) int {
			return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
		})
		name := bindingName(role)
		out[name] = &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Spec.Namespace, Labels: projectLabels(p)},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: v1alpha1.PermissionGroups[role]},
			Subjects:   subjects,
		}
	}
	return out
}

// place puts the project's namespace and bindings into a cluster, repairing whatever
// differs (a removed label, an edited or deleted binding), and removes bindings of roles
// that no longer have members. A namespace another live project holds (live says which
// projects of the tenant exist) is not touched: the first to place it keeps it.
func place(ctx context.Context, client kubernetes.Interface, p *v1alpha1.Project, live func(project string) bool) error {
	if err := placeNamespace(ctx, client, p, live); err != nil {
		return err
	}
	want := desiredBindings(p)

	bindings := client.RbacV1().RoleBindings(p.Spec.Namespace)
	existing, err := bindings.List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(projectLabels(p)).String()})
	if err != nil {
		return err
	}
	have := map[string]rbacv1.RoleBinding{}
	for _, b := range existing.Items {
		have[b.Name] = b
	}
	// Someone may have removed our labels from a binding of ours: look it up by name.
	for name := range want {
		if _, ok := have[name]; ok {
			continue
		}
		if b, err := bindings.Get(ctx, name, metav1.GetOptions{}); err == nil {
			have[name] = *b
		}
	}
	for name, b := range have {
		if _, ok := want[name]; !ok {
			if err := bindings.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("remove binding %s: %w", name, err)
			}
		} else if b.RoleRef != want[name].RoleRef {
			// A binding's role cannot change: replace it.
			if err := bindings.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("replace binding %s: %w", name, err)
			}
			delete(have, name)
		}
	}
	// The permission groups aggregate the built-in roles once the cluster's controller
	// manager has run; until then a binding to one grants nothing, and the project is not
	// in place (its members wait with a 503 rather than meet a 403). Removals never wait:
	// a member taken out loses the binding whatever else is not ready.
	var notReady error
	for name, b := range want {
		old, ok := have[name]
		if err := aggregated(ctx, client, b.RoleRef.Name); err != nil {
			notReady = err
			if keep := slices.DeleteFunc(slices.Clone(old.Subjects), func(s rbacv1.Subject) bool { return !slices.Contains(b.Subjects, s) }); ok && len(keep) < len(old.Subjects) {
				old.Subjects = keep
				if _, err := bindings.Update(ctx, &old, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
					return fmt.Errorf("remove members from binding %s: %w", name, err)
				}
			}
			continue
		}
		switch {
		case !ok:
			if _, err := bindings.Create(ctx, b, metav1.CreateOptions{FieldManager: fieldManager}); err != nil {
				return fmt.Errorf("create binding %s: %w", name, err)
			}
		case !slices.Equal(old.Subjects, b.Subjects) || !hasLabels(old.Labels, b.Labels):
			old.Subjects = b.Subjects
			if old.Labels == nil {
				old.Labels = map[string]string{}
			}
			for k, v := range b.Labels {
				old.Labels[k] = v
			}
			if _, err := bindings.Update(ctx, &old, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
				return fmt.Errorf("update binding %s: %w", name, err)
			}
		}
	}
	return notReady
}

// aggregated says whether a permission group has its rules yet.
func aggregated(ctx context.Context, client kubernetes.Interface, name string) error {
	role, err := client.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("permission group %s: %w", name, err)
	}
	if len(role.Rules) == 0 {
		return fmt.Errorf("permission group %s is not aggregated yet", name)
	}
	return nil
}

// placeNamespace creates the project's namespace or labels the one that is there,
// unless another live project holds it.
func placeNamespace(ctx context.Context, client kubernetes.Interface, p *v1alpha1.Project, live func(string) bool) error {
	namespaces := client.CoreV1().Namespaces()
	ns, err := namespaces.Get(ctx, p.Spec.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Only a namespace the platform made for this project (this UID) is ever deleted
		// with it; one that was there before is used, and kept.
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.Spec.Namespace, Labels: projectLabels(p),
			Annotations: map[string]string{v1alpha1.ProjectUIDAnnotation: string(p.UID)}}}
		_, err := namespaces.Create(ctx, ns, metav1.CreateOptions{FieldManager: fieldManager})
		if !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return fmt.Errorf("create namespace %s: %w", p.Spec.Namespace, err)
			}
			return nil
		}
		// Someone made it meanwhile (another project racing for it): look at whose it is.
		ns, err = namespaces.Get(ctx, p.Spec.Namespace, metav1.GetOptions{})
	}
	switch {
	case err != nil:
		return err
	case ns.DeletionTimestamp != nil:
		return fmt.Errorf("namespace %s is being deleted; it is created again once it is gone", p.Spec.Namespace)
	}
	if other := ns.Labels[v1alpha1.ProjectLabel]; other != "" && other != p.Name && live(other) {
		return fmt.Errorf("namespace %s in this cluster belongs to project %s", p.Spec.Namespace, other)
	}
	if hasLabels(ns.Labels, projectLabels(p)) {
		return nil
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	for k, v := range projectLabels(p) {
		ns.Labels[k] = v
	}
	if _, err := namespaces.Update(ctx, ns, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("label namespace %s: %w", p.Spec.Namespace, err)
	}
	return nil
}

// unplace removes the project from a cluster it left: its bindings, and its namespace
// when the project asks for that. It returns whether the namespace was kept.
func unplace(ctx context.Context, client kubernetes.Interface, p *v1alpha1.Project, namespace string) (kept bool, err error) {
	ns, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if other := ns.Labels[v1alpha1.ProjectLabel]; other != "" && other != p.Name {
		// Another project holds the namespace now: its bindings (of the same names) are
		// not this project's to remove.
		return true, nil
	}
	// Only the namespace the platform made for this very project is deleted: not one
	// that existed before (a cluster admin's), nor one an earlier project of the same
	// name made and retained. Labels anyone in the cluster can set prove nothing.
	if p.Spec.NamespacePolicy == v1alpha1.ProjectNamespaceDelete && p.UID != "" && ns.Annotations[v1alpha1.ProjectUIDAnnotation] == string(p.UID) {
		if err := client.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &ns.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("delete namespace %s: %w", namespace, err)
		}
		return false, nil
	}
	bindings := client.RbacV1().RoleBindings(namespace)
	for _, role := range roles {
		if err := bindings.Delete(ctx, bindingName(role), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return true, fmt.Errorf("remove binding %s: %w", bindingName(role), err)
		}
	}
	return true, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
