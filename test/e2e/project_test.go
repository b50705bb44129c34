package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	projectcontroller "github.com/ucloudstack/containerservice/pkg/provisioner/controllers/project"
)

func project(ns, name string, clusters []string, members ...v1alpha1.ProjectMember) *v1alpha1.Project {
	return &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.ProjectSpec{Clusters: clusters, Members: members}}
}

func member(kind v1alpha1.SubjectKind, name string, role v1alpha1.ProjectRole) v1alpha1.ProjectMember {
	return v1alpha1.ProjectMember{Kind: kind, Name: name, Role: role}
}

func waitProjectReady(ctx context.Context, t *testing.T, ns, name string) *v1alpha1.Project {
	t.Helper()
	var p *v1alpha1.Project
	eventually(ctx, t, "project "+name+" is Ready", func() (bool, error) {
		var err error
		p, err = env.CS.ContainerserviceV1alpha1().Projects(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Status.Phase == v1alpha1.ProjectReady && p.Status.ObservedGeneration == p.Generation, nil
	})
	return p
}

// TestProjects is the life of two projects, checked from the inside of both clusters and
// through the proxy as their members.
func TestProjects(t *testing.T) {
	ctx := testContext(t, 10*time.Minute)
	ns := env.NewTenant(t)
	admins := map[string]kubernetes.Interface{}
	for _, name := range []string{"pa", "pb"} {
		c := newCluster(name, ns)
		c.Spec.Administrators = []v1alpha1.Subject{{Kind: v1alpha1.SubjectKindUser, Name: "root@example.com"}}
		if _, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"pa", "pb"} {
		waitCondition(ctx, t, ns, name, "Ready", metav1.ConditionTrue)
		_, cfg := adminKubeconfig(ctx, t, env.CS, ns, name, 3600)
		admins[name] = kubernetes.NewForConfigOrDie(cfg)
	}
	projects := env.CS.ContainerserviceV1alpha1().Projects(ns)

	// Validation that needs other objects.
	t.Run("a project naming a missing cluster is refused", func(t *testing.T) {
		if _, err := projects.Create(ctx, project(ns, "ghost", []string{"pa", "nope"}), metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.clusters[1]") {
			t.Errorf("a project naming a missing cluster: %v, want Invalid on spec.clusters[1]", err)
		}
	})

	if !step(t, "payments and web are created", func(t *testing.T) {
		payments := project(ns, "payments", []string{"pa", "pb"},
			member(v1alpha1.SubjectKindUser, "alice@example.com", v1alpha1.ProjectRoleEdit),
			member(v1alpha1.SubjectKindUser, "bob@example.com", v1alpha1.ProjectRoleView),
			member(v1alpha1.SubjectKindGroup, "payments", v1alpha1.ProjectRoleEdit))
		web := project(ns, "web", []string{"pa"}, member(v1alpha1.SubjectKindGroup, "web-team", v1alpha1.ProjectRoleAdmin))
		web.Spec.NamespacePolicy = v1alpha1.ProjectNamespaceDelete
		for _, p := range []*v1alpha1.Project{payments, web} {
			if _, err := projects.Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}) {
		t.FailNow()
	}

	t.Run("a second project in namespace payments of pb is refused", func(t *testing.T) {
		clash := project(ns, "clash", []string{"pb"})
		clash.Spec.Namespace = "payments"
		if _, err := projects.Create(ctx, clash, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.clusters[0]") {
			t.Errorf("a second project in namespace payments of cluster pb: %v, want Invalid on spec.clusters[0]", err)
		}
	})

	if !step(t, "payments and web become Ready", func(t *testing.T) {
		start := time.Now()
		waitProjectReady(ctx, t, ns, "payments")
		waitProjectReady(ctx, t, ns, "web")
		t.Logf("both projects Ready %s after creation", time.Since(start))
	}) {
		t.FailNow()
	}

	var alice, bob, carol string
	if !step(t, "the members log in", func(t *testing.T) {
		alice, bob, carol = idToken(ctx, t, "alice@example.com", "alice"), idToken(ctx, t, "bob@example.com", "bob"), idToken(ctx, t, "carol@example.com", "carol")
	}) {
		t.FailNow()
	}
	as := func(token, cluster string) kubernetes.Interface {
		return kubernetes.NewForConfigOrDie(proxyConfig(ns, cluster, token))
	}

	t.Run("in place in both clusters", func(t *testing.T) {
		for name, admin := range admins {
			n, err := admin.CoreV1().Namespaces().Get(ctx, "payments", metav1.GetOptions{})
			if err != nil || n.Labels[v1alpha1.ProjectLabel] != "payments" {
				t.Fatalf("%s: namespace payments %v (labels %v)", name, err, n.Labels)
			}
			rbs, err := admin.RbacV1().RoleBindings("payments").List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, rb := range rbs.Items {
				if rb.Labels[v1alpha1.ProjectLabel] == "payments" {
					names = append(names, rb.Name)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, []string{"ucs:project:edit", "ucs:project:view"}) {
				t.Errorf("%s: bindings %v, want one per role with members", name, names)
			}
			edit, err := admin.RbacV1().RoleBindings("payments").Get(ctx, "ucs:project:edit", metav1.GetOptions{})
			if err != nil || edit.RoleRef.Name != "ucs:edit" || len(edit.Subjects) != 2 {
				t.Errorf("%s: the edit binding %+v (%v)", name, edit, err)
			}
			for _, u := range []string{"alice@example.com", "bob@example.com"} {
				if _, err := admin.CoreV1().ServiceAccounts(v1alpha1.UsersNamespace).Get(ctx, v1alpha1.ServiceAccountName(u), metav1.GetOptions{}); err != nil {
					t.Errorf("%s: no ServiceAccount for %s: %v", name, u, err)
				}
			}
		}
		role, err := admins["pa"].RbacV1().ClusterRoles().Get(ctx, projectcontroller.ProxyGroupsRole, metav1.GetOptions{})
		if err != nil || len(role.Rules) != 1 || !slices.Equal(role.Rules[0].ResourceNames, []string{"payments", "web-team"}) {
			t.Errorf("the proxy may impersonate %+v (%v), want exactly payments and web-team", role, err)
		}
	})

	membersActed := step(t, "members act as their role, in their namespace only", func(t *testing.T) {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "registry.example/api:1"}}}}}}
		if _, err := as(alice, "pa").AppsV1().Deployments("payments").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Errorf("alice (edit) creates a Deployment in payments: %v", err)
		}
		for _, target := range []string{"web", "kube-system"} {
			if _, err := as(alice, "pa").AppsV1().Deployments(target).Create(ctx, d, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
				t.Errorf("alice in %s: %v, want Forbidden", target, err)
			}
		}
		if _, err := as(alice, "pa").CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "alices"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("alice creates a namespace: %v, want Forbidden", err)
		}
		if _, err := as(alice, "pa").CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("alice lists nodes: %v, want Forbidden", err)
		}
		if _, err := as(bob, "pb").AppsV1().Deployments("payments").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("bob (view) reads: %v", err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}
		if _, err := as(bob, "pb").CoreV1().ConfigMaps("payments").Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("bob (view) creates: %v, want Forbidden", err)
		}
		if _, err := as(carol, "pb").CoreV1().ConfigMaps("payments").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Errorf("carol (edit through the group payments) creates: %v", err)
		}
	})

	t.Run("on the host, members reach their project and its clusters only", func(t *testing.T) {
		host := func(token string) versioned.Interface {
			cfg := rest.AnonymousClientConfig(env.AdminConfig)
			cfg.BearerToken = token
			return versioned.NewForConfigOrDie(cfg)
		}
		if _, err := host(alice).ContainerserviceV1alpha1().Projects(ns).Get(ctx, "payments", metav1.GetOptions{}); err != nil {
			t.Errorf("alice gets her project: %v", err)
		}
		if _, err := host(alice).ContainerserviceV1alpha1().Clusters(ns).GetKubeconfig(ctx, "pb", metav1.GetOptions{}); err != nil {
			t.Errorf("alice gets the kubeconfig of her project's cluster: %v", err)
		}
		if _, err := host(alice).ContainerserviceV1alpha1().Projects(ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("alice gets another project: %v, want Forbidden", err)
		}
		if _, err := host(alice).ContainerserviceV1alpha1().Clusters(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("alice lists the tenant's clusters: %v, want Forbidden", err)
		}
	})

	t.Run("another tenant's member sees nothing of this one", func(t *testing.T) {
		other := env.NewTenant(t)
		if _, err := env.CS.ContainerserviceV1alpha1().Projects(other).Create(ctx, project(other, "elsewhere", nil,
			member(v1alpha1.SubjectKindUser, "eve@example.com", v1alpha1.ProjectRoleAdmin)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitProjectReady(ctx, t, other, "elsewhere")
		eve := idToken(ctx, t, "eve@example.com", "eve")
		cfg := rest.AnonymousClientConfig(env.AdminConfig)
		cfg.BearerToken = eve
		if _, err := versioned.NewForConfigOrDie(cfg).ContainerserviceV1alpha1().Projects(other).Get(ctx, "elsewhere", metav1.GetOptions{}); err != nil {
			t.Errorf("eve gets her own project: %v", err)
		}
		for _, err := range []error{
			func() error {
				_, err := versioned.NewForConfigOrDie(cfg).ContainerserviceV1alpha1().Clusters(ns).List(ctx, metav1.ListOptions{})
				return err
			}(),
			func() error {
				_, err := versioned.NewForConfigOrDie(cfg).ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "pa", metav1.GetOptions{})
				return err
			}(),
			func() error {
				_, err := as(eve, "pa").CoreV1().Pods("payments").List(ctx, metav1.ListOptions{})
				return err
			}(),
		} {
			if !apierrors.IsForbidden(err) {
				t.Errorf("eve on tenant %s: %v, want Forbidden", ns, err)
			}
		}
	})

	aliceBack := step(t, "removing a member revokes at once, adding one grants within seconds", func(t *testing.T) {
		path := "/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/" + ns + "/clusters/pa/proxy/api/v1/namespaces/payments/configmaps"
		aliceHost := rest.AnonymousClientConfig(env.AdminConfig)
		aliceHost.BearerToken = alice
		if code := send(t, aliceHost, http.MethodGet, path, nil); code != http.StatusOK {
			t.Fatalf("alice before: %d", code)
		}
		setMembers(ctx, t, ns, "payments", func(m []v1alpha1.ProjectMember) []v1alpha1.ProjectMember {
			return slices.DeleteFunc(m, func(x v1alpha1.ProjectMember) bool { return x.Name == "alice@example.com" })
		})
		removed := time.Now()
		revokeCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		eventually(revokeCtx, t, "alice is refused within 2 s", func() (bool, error) {
			return send(t, aliceHost, http.MethodGet, path, nil) == http.StatusForbidden, nil
		})
		t.Logf("alice refused %s after her removal", time.Since(removed))

		setMembers(ctx, t, ns, "payments", func(m []v1alpha1.ProjectMember) []v1alpha1.ProjectMember {
			return append(m, member(v1alpha1.SubjectKindUser, "alice@example.com", v1alpha1.ProjectRoleEdit))
		})
		added := time.Now()
		const reAddGrace = 2 * time.Second
		sawWait := false
		eventually(ctx, t, "alice is let in again", func() (bool, error) {
			switch code := send(t, aliceHost, http.MethodGet, path, nil); code {
			case http.StatusOK:
				return true, nil
			case http.StatusServiceUnavailable:
				sawWait = true
			case http.StatusForbidden:
				// Right after her removal the host still refuses her for a moment: its
				// RoleBinding for the project converges, and our server keeps the host's
				// denial 1 s (--authorization-webhook-cache-unauthorized-ttl). After that,
				// refusing a member is wrong: she waits (503) or is in.
				if since := time.Since(added); since > reAddGrace {
					t.Errorf("alice, added back, got 403 %s after, instead of 503 while her bindings converge", since.Round(time.Millisecond))
				}
			}
			return false, nil
		})
		t.Logf("alice let in %s after she was added again (503 meanwhile: %v)", time.Since(added), sawWait)
	})

	t.Run("a member whose bindings are not in place yet is told to retry", func(t *testing.T) {
		// A namespace that cannot go away yet (a finalizer holds it) keeps the project
		// from being placed: carol is a member, but nothing of hers is in the cluster.
		admin := admins["pa"]
		hold := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}
		if _, err := admin.CoreV1().Namespaces().Create(ctx, hold, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := admin.CoreV1().Namespaces().Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := projects.Create(ctx, project(ns, "held", []string{"pa"}, member(v1alpha1.SubjectKindUser, "carol@example.com", v1alpha1.ProjectRoleEdit)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		carolHost := rest.AnonymousClientConfig(env.AdminConfig)
		carolHost.BearerToken = carol
		client, err := rest.HTTPClientFor(carolHost)
		if err != nil {
			t.Fatal(err)
		}
		url := carolHost.Host + "/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/" + ns + "/clusters/pa/proxy/api/v1/namespaces/held/configmaps"
		// Once the proxy has seen the project (an informer, milliseconds): 503 with
		// Retry-After, never a way in.
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		eventually(waitCtx, t, "carol is told to retry", func() (bool, error) {
			resp, err := client.Get(url)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("carol got in before her bindings were in place")
			}
			return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "",
				fmt.Errorf("%d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		})
		n, err := admin.CoreV1().Namespaces().Get(ctx, "held", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Finalizers = nil
		if _, err := admin.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "carol is let in once the project is placed", func() (bool, error) {
			return send(t, carolHost, http.MethodGet, strings.TrimPrefix(url, carolHost.Host), nil) == http.StatusOK, nil
		})
		if err := projects.Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("drift inside a cluster is repaired", func(t *testing.T) {
		admin := admins["pb"]
		if err := admin.RbacV1().RoleBindings("payments").Delete(ctx, "ucs:project:view", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		n, err := admin.CoreV1().Namespaces().Get(ctx, "payments", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		delete(n.Labels, v1alpha1.ProjectLabel)
		if _, err := admin.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		edit, err := admin.RbacV1().RoleBindings("payments").Get(ctx, "ucs:project:edit", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		edit.Subjects = append(edit.Subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "intruders"})
		if _, err := admin.RbacV1().RoleBindings("payments").Update(ctx, edit, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := admin.CoreV1().ServiceAccounts(v1alpha1.UsersNamespace).Delete(ctx, v1alpha1.ServiceAccountName("bob@example.com"), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the project's objects are put back", func() (bool, error) {
			if _, err := admin.RbacV1().RoleBindings("payments").Get(ctx, "ucs:project:view", metav1.GetOptions{}); err != nil {
				return false, err
			}
			if n, err := admin.CoreV1().Namespaces().Get(ctx, "payments", metav1.GetOptions{}); err != nil || n.Labels[v1alpha1.ProjectLabel] != "payments" {
				return false, err
			}
			if e, err := admin.RbacV1().RoleBindings("payments").Get(ctx, "ucs:project:edit", metav1.GetOptions{}); err != nil || len(e.Subjects) != 2 {
				return false, err
			}
			_, err := admin.CoreV1().ServiceAccounts(v1alpha1.UsersNamespace).Get(ctx, v1alpha1.ServiceAccountName("bob@example.com"), metav1.GetOptions{})
			return err == nil, err
		})
	})

	// Checks alice's Deployment and carol's ConfigMap, and holds a watch as alice, a member again.
	t.Run("leaving a cluster keeps the namespace unless asked", func(t *testing.T) {
		needs(t, membersActed, "alice's Deployment and carol's ConfigMap")
		needs(t, aliceBack, "alice back in payments")
		p, err := projects.Get(ctx, "payments", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.Clusters = []string{"pa"}
		if _, err := projects.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		p = waitProjectReady(ctx, t, ns, "payments")
		if !slices.Contains(p.Status.Retained, v1alpha1.ProjectRetainedNamespace{Cluster: "pb", Namespace: "payments"}) {
			t.Errorf("status does not say what was kept: %+v", p.Status.Retained)
		}
		if _, err := admins["pb"].CoreV1().ConfigMaps("payments").Get(ctx, "settings", metav1.GetOptions{}); err != nil {
			t.Errorf("carol's ConfigMap in the namespace left behind: %v", err)
		}
		if rbs, err := admins["pb"].RbacV1().RoleBindings("payments").List(ctx, metav1.ListOptions{}); err != nil || len(rbs.Items) != 0 {
			t.Errorf("bindings left in pb: %v %v", rbs, err)
		}
		eventually(ctx, t, "ServiceAccounts nobody uses in pb are pruned", func() (bool, error) {
			sas, err := admins["pb"].CoreV1().ServiceAccounts(v1alpha1.UsersNamespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, sa := range sas.Items {
				if sa.Name == v1alpha1.ServiceAccountName("alice@example.com") || sa.Name == v1alpha1.ServiceAccountName("bob@example.com") {
					return false, nil
				}
			}
			return true, nil
		})

		if err := projects.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "web (namespacePolicy Delete) takes its namespace along", func() (bool, error) {
			n, err := admins["pa"].CoreV1().Namespaces().Get(ctx, "web", metav1.GetOptions{})
			return apierrors.IsNotFound(err) || (err == nil && n.DeletionTimestamp != nil), nil
		})
		path := "/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/" + ns + "/clusters/pa/proxy/api/v1/namespaces/payments/configmaps"
		watchHost := rest.AnonymousClientConfig(env.AdminConfig)
		watchHost.BearerToken = alice
		// A watch alice holds through the proxy ends with her access, when the project goes.
		httpClient, err := rest.HTTPClientFor(watchHost)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, watchHost.Host+path+"?watch=true", nil)
		resp, err := httpClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("alice's watch: %v %v", resp, err)
		}
		watchEnded := make(chan struct{})
		go func() {
			defer close(watchEnded)
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
		}()
		if err := projects.Delete(ctx, "payments", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deleted := time.Now()
		eventually(ctx, t, "payments is gone", func() (bool, error) {
			_, err := projects.Get(ctx, "payments", metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		})
		select {
		case <-watchEnded:
			t.Logf("alice's watch ended %s after the project's deletion", time.Since(deleted))
		case <-time.After(10 * time.Second):
			t.Errorf("alice's watch goes on 10 s after the project's deletion")
		}
		if d, err := admins["pa"].AppsV1().Deployments("payments").Get(ctx, "api", metav1.GetOptions{}); err != nil || d.DeletionTimestamp != nil {
			t.Errorf("alice's Deployment after the project was deleted: %v", err)
		}
		if rbs, err := admins["pa"].RbacV1().RoleBindings("payments").List(ctx, metav1.ListOptions{}); err != nil || len(rbs.Items) != 0 {
			t.Errorf("bindings left in pa: %v %v", rbs, err)
		}
		if _, err := env.Kube.RbacV1().RoleBindings(ns).Get(ctx, "containerservice:project:payments", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the host binding outlived the project: %v", err)
		}
		role, err := admins["pa"].RbacV1().ClusterRoles().Get(ctx, projectcontroller.ProxyGroupsRole, metav1.GetOptions{})
		if err != nil || len(role.Rules) != 0 {
			t.Errorf("with no project left, the proxy may still impersonate groups: %+v (%v)", role.Rules, err)
		}
	})
}

// setMembers changes a project's members, retrying on conflicts.
func setMembers(ctx context.Context, t *testing.T, ns, name string, change func([]v1alpha1.ProjectMember) []v1alpha1.ProjectMember) {
	t.Helper()
	projects := env.CS.ContainerserviceV1alpha1().Projects(ns)
	eventually(ctx, t, "update the members of "+name, func() (bool, error) {
		p, err := projects.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		p.Spec.Members = change(p.Spec.Members)
		_, err = projects.Update(ctx, p, metav1.UpdateOptions{})
		return err == nil, err
	})
}
