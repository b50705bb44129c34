package project

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

var everything = labels.Everything()

// ProxyGroupsRole is the ClusterRole (and ClusterRoleBinding to the proxy identity) that
// lets the proxy impersonate exactly the group names the cluster's administrators and its
// projects' members name: never any other, never system:*, and no rule at all when there
// are none (a rule without resourceNames would allow every group).
const ProxyGroupsRole = v1alpha1.PlatformPrefix + "proxy-groups"

var managed = map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}

// identities are who may enter a cluster: users (each with a ServiceAccount) and groups.
type identities struct {
	users, groups sets.Set[string]
}

// wanted collects the cluster's administrators and the members of every project placed
// in it (projects being deleted excepted).
func (c *Controller) wanted(cl *v1alpha1.Cluster) (identities, error) {
	id := identities{users: sets.New[string](), groups: sets.New[string]()}
	add := func(kind v1alpha1.SubjectKind, name string) {
		if v1alpha1.ReservedSubject(name) {
			return
		}
		switch kind {
		case v1alpha1.SubjectKindUser:
			id.users.Insert(name)
		case v1alpha1.SubjectKindGroup:
			id.groups.Insert(name)
		}
	}
	for _, a := range cl.Spec.Administrators {
		add(a.Kind, a.Name)
	}
	projects, err := c.projects.Projects(cl.Namespace).List(everything)
	if err != nil {
		return id, err
	}
	for _, p := range projects {
		if p.DeletionTimestamp != nil || !slices.Contains(p.Spec.Clusters, cl.Name) {
			continue
		}
		for _, m := range p.Spec.Members {
			add(m.Kind, m.Name)
		}
	}
	return id, nil
}

// reconcileIdentities brings one cluster's identities in step (key: namespace/name).
func (c *Controller) reconcileIdentities(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cl, err := c.clusters.Clusters(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.locks, key)
		c.mu.Unlock()
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !running(cl) {
		return 0, nil // its change to Running queues it again
	}
	if err := c.syncIdentities(ctx, cl); err != nil {
		return 0, err
	}
	return 2 * resync, nil
}

// syncIdentities makes the cluster's ServiceAccounts in ucs-users exactly those of its
// administrators and members (removing the ones nobody uses any more), and the groups the
// proxy may impersonate exactly theirs. It compares before it writes: a pass over a
// cluster in step costs two reads.
func (c *Controller) syncIdentities(ctx context.Context, cl *v1alpha1.Cluster) error {
	lock := c.lock(cl.Namespace + "/" + cl.Name)
	lock.Lock()
	defer lock.Unlock()
	// Computed under the lock: a pass that started later saw at least as much.
	want, err := c.wanted(cl)
	if err != nil {
		return err
	}
	client, err := c.clientFor(ctx, cl)
	if err != nil {
		return err
	}
	if err := syncServiceAccounts(ctx, client, want.users); err != nil {
		return fmt.Errorf("ServiceAccounts of %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	if err := syncProxyGroups(ctx, client, want.groups); err != nil {
		return fmt.Errorf("proxy groups of %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	return nil
}

func syncServiceAccounts(ctx context.Context, client kubernetes.Interface, users sets.Set[string]) error {
	sas := client.CoreV1().ServiceAccounts(v1alpha1.UsersNamespace)
	list, err := sas.List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(managed).String()})
	if err != nil {
		return err
	}
	want := map[string]string{}
	for u := range users {
		want[v1alpha1.ServiceAccountName(u)] = u
	}
	for _, sa := range list.Items {
		if user, ok := want[sa.Name]; ok && sa.Annotations[v1alpha1.UsernameKey] == user {
			delete(want, sa.Name)
			continue
		} else if ok {
			continue // present with a wrong annotation: written again below
		}
		if err := sas.Delete(ctx, sa.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("prune %s: %w", sa.Name, err)
		}
	}
	// A project of hundreds of people creates hundreds of ServiceAccounts: a few at a time.
	return parallel(len(want), func(work func(func() error)) {
		for name, user := range want {
			work(func() error {
				sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: v1alpha1.UsersNamespace, Labels: managed,
					Annotations: map[string]string{v1alpha1.UsernameKey: user}}}
				_, err := sas.Create(ctx, sa, metav1.CreateOptions{FieldManager: fieldManager})
				if apierrors.IsAlreadyExists(err) {
					_, err = sas.Update(ctx, sa, metav1.UpdateOptions{FieldManager: fieldManager})
				}
				if err != nil {
					return fmt.Errorf("ServiceAccount of %s: %w", user, err)
				}
				return nil
			})
		}
	})
}

// writers bounds the requests one sync sends to a cluster at once.
const writers = 8

// parallel runs the functions that feed passes to work, at most writers at a time, and
// returns the first error.
func parallel(n int, feed func(work func(func() error))) error {
	if n == 0 {
		return nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		slots = make(chan struct{}, writers)
	)
	feed(func(f func() error) {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := f(); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	})
	wg.Wait()
	return first
}

func syncProxyGroups(ctx context.Context, client kubernetes.Interface, groups sets.Set[string]) error {
	var rules []rbacv1.PolicyRule
	if groups.Len() > 0 {
		rules = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"groups"}, Verbs: []string{"impersonate"}, ResourceNames: sets.List(groups)}}
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ProxyGroupsRole, Labels: managed}, Rules: rules}
	roles := client.RbacV1().ClusterRoles()
	existing, err := roles.Get(ctx, ProxyGroupsRole, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := roles.Create(ctx, role, metav1.CreateOptions{FieldManager: fieldManager}); err != nil {
			return err
		}
	case err != nil:
		return err
	case !equalRules(existing.Rules, rules) || existing.AggregationRule != nil:
		existing.Rules, existing.AggregationRule = rules, nil
		if _, err := roles.Update(ctx, existing, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
			return err
		}
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ProxyGroupsRole, Labels: managed},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ProxyGroupsRole},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: v1alpha1.ProxyUser}}}
	return ensureClusterRoleBinding(ctx, client, binding)
}

func ensureClusterRoleBinding(ctx context.Context, client kubernetes.Interface, want *rbacv1.ClusterRoleBinding) error {
	bindings := client.RbacV1().ClusterRoleBindings()
	existing, err := bindings.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = bindings.Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
		return err
	case err != nil:
		return err
	case existing.RoleRef != want.RoleRef:
		// The role a binding refers to cannot change: replace the binding.
		if err := bindings.Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		_, err = bindings.Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
		return err
	case !slices.Equal(existing.Subjects, want.Subjects):
		existing.Subjects = want.Subjects
		_, err = bindings.Update(ctx, existing, metav1.UpdateOptions{FieldManager: fieldManager})
		return err
	}
	return nil
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(a, b, func(x, y rbacv1.PolicyRule) bool {
		return slices.Equal(x.APIGroups, y.APIGroups) && slices.Equal(x.Resources, y.Resources) && slices.Equal(x.Verbs, y.Verbs) &&
			slices.Equal(x.ResourceNames, y.ResourceNames) && slices.Equal(x.NonResourceURLs, y.NonResourceURLs)
	})
}
