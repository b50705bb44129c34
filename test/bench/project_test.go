package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	csv1alpha1 "github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned/typed/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/issuer"
)

const (
	projectMembers  = 500
	projectClusters = 3
)

// BenchmarkProject measures a project of 500 members over 3 clusters: from its creation
// to every binding in place in every cluster (status Ready), and from adding one more
// member to that person's first request through the proxy that succeeds; and it counts
// the RBAC objects in each cluster. The reference, in the same run, is the same objects
// written straight into the three clusters by a client with the controller's
// parallelism (8 writers per cluster): the floor any controller pays.
//
//	go test -run '^$' -bench Project -benchtime 1x ./test/bench/
func BenchmarkProject(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	env := startStack(ctx, b, stack.Config{Users: &issuer.Users{Users: []issuer.User{{Name: "newbie@example.com", Password: "newbie"}}}})
	defer env.Stop()
	clusters := env.CS.ContainerserviceV1alpha1().Clusters("bench")
	var names []string
	for i := range projectClusters {
		name := fmt.Sprintf("c%d", i)
		names = append(names, name)
		if _, err := clusters.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.ClusterSpec{Administrators: []v1alpha1.Subject{{Kind: v1alpha1.SubjectKindUser, Name: "root@example.com"}}}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	admins := map[string]kubernetes.Interface{}
	for _, name := range names {
		admins[name] = readyClusterAdmin(ctx, b, clusters, name)
		// The measure is the project's, not the cluster's start: wait until its controller
		// manager aggregated the permission groups.
		poll(ctx, b, name+" permission groups", 100*time.Millisecond, func() bool {
			r, err := admins[name].RbacV1().ClusterRoles().Get(ctx, "ucs:view", metav1.GetOptions{})
			return err == nil && len(r.Rules) > 0
		})
	}

	roles := []v1alpha1.ProjectRole{v1alpha1.ProjectRoleAdmin, v1alpha1.ProjectRoleEdit, v1alpha1.ProjectRoleView}
	p := &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "big"}, Spec: v1alpha1.ProjectSpec{Clusters: names}}
	for i := range projectMembers {
		p.Spec.Members = append(p.Spec.Members, v1alpha1.ProjectMember{Kind: v1alpha1.SubjectKindUser,
			Name: fmt.Sprintf("user-%03d@example.com", i), Role: roles[i%len(roles)]})
	}
	projects := env.CS.ContainerserviceV1alpha1().Projects("bench")
	start := time.Now()
	if _, err := projects.Create(ctx, p, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	converged := func() bool {
		got, err := projects.Get(ctx, "big", metav1.GetOptions{})
		return err == nil && got.Status.Phase == v1alpha1.ProjectReady && got.Status.ObservedGeneration == got.Generation
	}
	poll(ctx, b, "the project Ready", 20*time.Millisecond, converged)
	create := time.Since(start)

	// What is in each cluster: one binding per role, every member in one, a
	// ServiceAccount each.
	for name, admin := range admins {
		rbs, err := admin.RbacV1().RoleBindings("big").List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.ProjectLabel + "=big"})
		if err != nil {
			b.Fatal(err)
		}
		subjects := 0
		for _, rb := range rbs.Items {
			subjects += len(rb.Subjects)
		}
		sas, err := admin.CoreV1().ServiceAccounts(v1alpha1.UsersNamespace).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.ManagedByLabel + "=" + v1alpha1.ManagedByValue})
		if err != nil {
			b.Fatal(err)
		}
		if len(rbs.Items) != len(roles) || subjects != projectMembers || len(sas.Items) < projectMembers {
			b.Fatalf("%s: %d bindings with %d subjects, %d ServiceAccounts", name, len(rbs.Items), subjects, len(sas.Items))
		}
	}

	// One more member: from the change to their first request that goes through.
	token := idTokenFor(ctx, b, env, "newbie@example.com", "newbie")
	server, err := env.DirectConfig()
	if err != nil {
		b.Fatal(err)
	}
	newbie := rest.AnonymousClientConfig(server)
	newbie.BearerToken = token
	client, err := rest.HTTPClientFor(newbie)
	if err != nil {
		b.Fatal(err)
	}
	url := newbie.Host + "/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/bench/clusters/c0/proxy/api/v1/namespaces/big/configmaps"
	status := func() int {
		resp, err := client.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status(); code != http.StatusForbidden {
		b.Fatalf("before joining: %d", code)
	}
	got, err := projects.Get(ctx, "big", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	got.Spec.Members = append(got.Spec.Members, v1alpha1.ProjectMember{Kind: v1alpha1.SubjectKindUser, Name: "newbie@example.com", Role: v1alpha1.ProjectRoleView})
	start = time.Now()
	if _, err := projects.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		b.Fatal(err)
	}
	poll(ctx, b, "newbie gets in", 10*time.Millisecond, func() bool { return status() == http.StatusOK })
	join := time.Since(start)
	poll(ctx, b, "the project Ready again", 20*time.Millisecond, converged)
	joinReady := time.Since(start)

	// The reference: the same objects straight into each cluster.
	start = time.Now()
	var wg sync.WaitGroup
	for _, admin := range admins {
		wg.Go(func() { writeProjectDirectly(ctx, b, admin, p) })
	}
	wg.Wait()
	reference := time.Since(start)

	fmt.Printf("| measure (%d members, %d clusters) | containerservice | reference: the same objects written directly | ratio |\n|---|---|---|---|\n", projectMembers, projectClusters)
	fmt.Printf("| create → every binding in place (Ready) | %.2f s | %.2f s | %.2f |\n", create.Seconds(), reference.Seconds(), create.Seconds()/reference.Seconds())
	fmt.Printf("| add one member → their first request through the proxy | %.3f s | | |\n", join.Seconds())
	fmt.Printf("| add one member → project Ready again | %.3f s | | |\n", joinReady.Seconds())
	fmt.Printf("| RoleBindings per cluster | %d (one per role) | | |\n", len(roles))
	b.ReportMetric(create.Seconds(), "s-create-ready")
	b.ReportMetric(join.Seconds(), "s-add-member")
}

// writeProjectDirectly writes what the controller writes for p, 8 requests at a time,
// into other names: a namespace, a ServiceAccount per member in a namespace of its own,
// a RoleBinding per role.
func writeProjectDirectly(ctx context.Context, b *testing.B, admin kubernetes.Interface, p *v1alpha1.Project) {
	for _, ns := range []string{"ref", "ref-users"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Error(err)
			return
		}
	}
	slots := make(chan struct{}, 8)
	var wg sync.WaitGroup
	subjects := map[v1alpha1.ProjectRole][]rbacv1.Subject{}
	for _, m := range p.Spec.Members {
		name := v1alpha1.ServiceAccountName(m.Name)
		subjects[m.Role] = append(subjects[m.Role], rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "ref-users", Name: name})
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if _, err := admin.CoreV1().ServiceAccounts("ref-users").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name,
				Annotations: map[string]string{v1alpha1.UsernameKey: m.Name}}}, metav1.CreateOptions{}); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	for role, s := range subjects {
		if _, err := admin.RbacV1().RoleBindings("ref").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ref:" + string(role)},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "ucs:" + string(role)}, Subjects: s}, metav1.CreateOptions{}); err != nil {
			b.Error(err)
		}
	}
}

// poll checks cond every interval until it holds.
func poll(ctx context.Context, b *testing.B, what string, interval time.Duration, cond func() bool) {
	for !cond() {
		select {
		case <-ctx.Done():
			b.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// adminConfig returns an unthrottled client configuration of a cluster, with a
// break-glass credential on its internal endpoint, and its kubeconfig.
func adminConfig(ctx context.Context, b *testing.B, clusters csv1alpha1.ClusterInterface, name string) (*rest.Config, []byte) {
	seconds := int64(3600)
	resp, err := clusters.CreateAdminKubeconfig(ctx, name, &v1alpha1.AdminKubeconfigRequest{Spec: v1alpha1.AdminKubeconfigRequestSpec{
		ExpirationSeconds: &seconds, Endpoint: v1alpha1.EndpointInternal}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(resp.Status.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1e6, 1e6
	return cfg, resp.Status.Kubeconfig
}

// readyClusterAdmin waits until the cluster is Ready and returns an unthrottled client
// for it with a break-glass credential on its internal endpoint.
func readyClusterAdmin(ctx context.Context, b *testing.B, clusters csv1alpha1.ClusterInterface, name string) kubernetes.Interface {
	poll(ctx, b, name+" Ready", 100*time.Millisecond, func() bool {
		c, err := clusters.Get(ctx, name, metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ClusterConditionReady)
	})
	cfg, _ := adminConfig(ctx, b, clusters, name)
	return kubernetes.NewForConfigOrDie(cfg)
}
