package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	applymetav1 "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/metadata"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	applyv1alpha1 "github.com/ucloudstack/containerservice/pkg/generated/applyconfiguration/containerservice/v1alpha1"
)

func cluster(name, ns string) *v1alpha1.Cluster {
	return &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
}

func TestClusterCRUDWithDefaults(t *testing.T) {
	ctx, ns := testContext(t), env.NewTenant(t)
	clusters := env.CS.ContainerserviceV1alpha1().Clusters(ns)

	created, err := clusters.Create(ctx, cluster("prod", ns), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	spec := created.Spec
	if spec.Version != "v1.37.1" || spec.ControlPlane.Replicas != 1 ||
		strings.Join(spec.Network.PodCIDRs, ",") != "10.244.0.0/16" || strings.Join(spec.Network.ServiceCIDRs, ",") != "10.96.0.0/12" {
		t.Errorf("defaults not applied: %+v", spec)
	}
	if len(spec.Administrators) != 1 || spec.Administrators[0].Name != "admin" {
		t.Errorf("the creator (admin) is not the administrator: %v", spec.Administrators)
	}
	if created.Status.Phase != v1alpha1.ClusterPending || created.Generation != 1 {
		t.Errorf("new cluster: phase %q generation %d, want Pending 1", created.Status.Phase, created.Generation)
	}

	got, err := clusters.Get(ctx, "prod", metav1.GetOptions{})
	if err != nil || got.UID != created.UID {
		t.Fatalf("get: %v", err)
	}
	got.Spec.Administrators = append(got.Spec.Administrators, v1alpha1.Subject{Kind: v1alpha1.SubjectKindGroup, Name: "ops"})
	updated, err := clusters.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.Generation != 2 || len(updated.Spec.Administrators) != 2 {
		t.Errorf("update: generation %d administrators %v, want 2 and two", updated.Generation, updated.Spec.Administrators)
	}
	// What the platform cannot do yet is refused, not accepted and ignored.
	updated.Spec.ControlPlane.Replicas = 3
	if _, err := clusters.Update(ctx, updated, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) ||
		!strings.Contains(err.Error(), "spec.controlPlane.replicas") || !strings.Contains(err.Error(), "not supported yet") {
		t.Errorf("three control plane replicas: %v, want Invalid naming spec.controlPlane.replicas", err)
	}

	dual := cluster("dual", ns)
	dual.Spec.Network.IPFamilies = []v1alpha1.IPFamily{v1alpha1.IPv4, v1alpha1.IPv6}
	if d, err := clusters.Create(ctx, dual, metav1.CreateOptions{}); err != nil {
		t.Errorf("create dual-stack: %v", err)
	} else if strings.Join(d.Spec.Network.PodCIDRs, ",") != "10.244.0.0/16,fd00:10:244::/56" {
		t.Errorf("dual-stack pod ranges defaulted to %v", d.Spec.Network.PodCIDRs)
	}

	list, err := clusters.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 {
		t.Fatalf("list: %v, %d items", err, len(list.Items))
	}
	if err := clusters.Delete(ctx, "prod", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := clusters.Get(ctx, "prod", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v, want NotFound", err)
	}
}

func TestAllKindsAndFieldSelectors(t *testing.T) {
	ctx, ns := testContext(t), env.NewTenant(t)
	api := env.CS.ContainerserviceV1alpha1()
	if _, err := api.Nodes(ns).Create(ctx, &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: "prod-0"}, Spec: v1alpha1.NodeSpec{ClusterName: "prod"}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.clusterName") {
		t.Errorf("a node of a cluster that does not exist: %v, want Invalid naming spec.clusterName", err)
	}
	if _, err := api.Plugins(ns).Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "prod-0"}, Spec: v1alpha1.PluginSpec{ClusterName: "prod", Type: "csi"}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.clusterName") {
		t.Errorf("a plugin of a cluster that does not exist: %v, want Invalid naming spec.clusterName", err)
	}
	for _, name := range []string{"prod", "dev"} {
		if _, err := api.Clusters(ns).Create(ctx, cluster(name, ns), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []struct{ name, cluster string }{{"prod-1", "prod"}, {"prod-2", "prod"}, {"dev-1", "dev"}} {
		_, err := api.Nodes(ns).Create(ctx, &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name},
			Spec: v1alpha1.NodeSpec{ClusterName: n.cluster}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create node %s: %v", n.name, err)
		}
	}
	prod, err := api.Nodes(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.clusterName=prod"})
	if err != nil {
		t.Fatalf("list nodes of prod: %v", err)
	}
	if len(prod.Items) != 2 {
		t.Errorf("spec.clusterName=prod selected %d nodes, want 2", len(prod.Items))
	}
	if cpu := prod.Items[0].Spec.Resources.CPU; cpu.Cmp(resource.MustParse("4")) != 0 {
		t.Errorf("node cpu defaulted to %s, want 4", cpu.String())
	}
	if _, err := api.Nodes(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.resources.cpu=4"}); !apierrors.IsBadRequest(err) {
		t.Errorf("selecting on an unsupported field: %v, want BadRequest", err)
	}

	p, err := api.Plugins(ns).Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "prod-storage"},
		Spec: v1alpha1.PluginSpec{ClusterName: "prod", Type: "csi"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create plugin: %v", err)
	}
	if p.Spec.Enabled == nil || !*p.Spec.Enabled {
		t.Errorf("plugin not enabled by default")
	}
	checkPluginAdmission(ctx, t, ns)
	byType, err := api.Plugins(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.clusterName=prod,spec.type=csi"})
	if err != nil || len(byType.Items) != 1 {
		t.Errorf("plugins by cluster and type: %v, %d items", err, len(byType.Items))
	}

	newProject := func() *v1alpha1.Project {
		return &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{GenerateName: "payments-"},
			Spec: v1alpha1.ProjectSpec{Clusters: []string{"prod"}, Members: []v1alpha1.ProjectMember{{Kind: v1alpha1.SubjectKindUser, Name: "bob", Role: v1alpha1.ProjectRoleEdit}}}}
	}
	if err := api.Clusters(ns).Delete(ctx, "prod", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Projects(ns).Create(ctx, newProject(), metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.clusters[0]") {
		t.Errorf("a project naming a cluster that does not exist: %v, want Invalid naming spec.clusters[0]", err)
	}
	if _, err := api.Clusters(ns).Create(ctx, cluster("prod", ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	proj, err := api.Projects(ns).Create(ctx, newProject(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	if proj.Spec.Namespace != proj.Name || !strings.HasPrefix(proj.Name, "payments-") || proj.Spec.NamespacePolicy != v1alpha1.ProjectNamespaceRetain {
		t.Errorf("project %s got namespace %q and policy %q, want its generated name and Retain", proj.Name, proj.Spec.Namespace, proj.Spec.NamespacePolicy)
	}
	proj.Spec.Namespace = "other"
	if _, err := api.Projects(ns).Update(ctx, proj, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("changing a project's namespace: %v, want Invalid", err)
	}
}

func TestWatchSeesEveryChange(t *testing.T) {
	ctx, ns := testContext(t), env.NewTenant(t)
	clusters := env.CS.ContainerserviceV1alpha1().Clusters(ns)
	w, err := clusters.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	c, err := clusters.Create(ctx, cluster("w", ns), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Labels = map[string]string{"env": "test"}
	if _, err := clusters.Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := clusters.Delete(ctx, "w", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []watch.EventType{watch.Added, watch.Modified, watch.Deleted} {
		select {
		case ev := <-w.ResultChan():
			got, ok := ev.Object.(*v1alpha1.Cluster)
			if ev.Type != want || !ok || got.Name != "w" {
				t.Fatalf("event %s %T, want %s of cluster w", ev.Type, ev.Object, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s event within 30s", want)
		}
	}
}

func TestStatusOnlyThroughTheSubresource(t *testing.T) {
	ctx, ns := testContext(t), env.NewTenant(t)
	clusters := env.CS.ContainerserviceV1alpha1().Clusters(ns)
	c, err := clusters.Create(ctx, cluster("s", ns), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	c.Status.Phase = v1alpha1.ClusterRunning
	c.Labels = map[string]string{"touched": "yes"}
	c, err = clusters.Update(ctx, c, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status.Phase != v1alpha1.ClusterPending {
		t.Errorf("status changed through the main resource: %s", c.Status.Phase)
	}

	c.Status.Phase = v1alpha1.ClusterRunning
	c.Status.Nodes = v1alpha1.NodeCounts{Ready: 1, Total: 1}
	c.Spec.ControlPlane.Replicas = 3
	c, err = clusters.UpdateStatus(ctx, c, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if c.Status.Phase != v1alpha1.ClusterRunning || c.Status.Nodes.Ready != 1 {
		t.Errorf("status update lost: %+v", c.Status)
	}
	if c.Spec.ControlPlane.Replicas != 1 || c.Generation != 1 {
		t.Errorf("spec changed through /status: replicas %d generation %d", c.Spec.ControlPlane.Replicas, c.Generation)
	}

	c.Status.Nodes = v1alpha1.NodeCounts{Ready: 5, Total: 1}
	if _, err := clusters.UpdateStatus(ctx, c, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("impossible node counts: %v, want Invalid", err)
	}
}

func TestServerSideApply(t *testing.T) {
	ctx, ns := testContext(t), env.NewTenant(t)
	clusters := env.CS.ContainerserviceV1alpha1().Clusters(ns)
	owner := metav1.ApplyOptions{FieldManager: "tenant", Force: true}

	applied, err := clusters.Apply(ctx, applyv1alpha1.Cluster("ssa", ns).
		WithSpec(applyv1alpha1.ClusterSpec().
			WithControlPlane(applyv1alpha1.ControlPlaneSpec().WithReplicas(1)).
			WithAdministrators(applyv1alpha1.Subject().WithKind(v1alpha1.SubjectKindUser).WithName("alice"))).
		WithStatus(applyv1alpha1.ClusterStatus().WithPhase(v1alpha1.ClusterRunning)), owner)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if applied.Spec.ControlPlane.Replicas != 1 || applied.Status.Phase != v1alpha1.ClusterPending {
		t.Errorf("apply created replicas %d phase %s, want 1 and Pending (status is reset)", applied.Spec.ControlPlane.Replicas, applied.Status.Phase)
	}

	// A second manager adds an administrator; administrators are a map list keyed by
	// kind and name, so both entries survive.
	_, err = clusters.Apply(ctx, applyv1alpha1.Cluster("ssa", ns).WithSpec(applyv1alpha1.ClusterSpec().
		WithAdministrators(applyv1alpha1.Subject().WithKind(v1alpha1.SubjectKindGroup).WithName("ops"))),
		metav1.ApplyOptions{FieldManager: "ops-team"})
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}

	ctrl, err := clusters.ApplyStatus(ctx, applyv1alpha1.Cluster("ssa", ns).
		WithSpec(applyv1alpha1.ClusterSpec().WithAdministrators(applyv1alpha1.Subject().WithKind(v1alpha1.SubjectKindGroup).WithName("intruders"))).
		WithStatus(applyv1alpha1.ClusterStatus().WithPhase(v1alpha1.ClusterProvisioning).
			WithConditions(applymetav1.Condition().WithType("Ready").WithStatus(metav1.ConditionFalse).
				WithReason("Provisioning").WithMessage("starting").WithLastTransitionTime(metav1.Now()))),
		metav1.ApplyOptions{FieldManager: "provisioner", Force: true})
	if err != nil {
		t.Fatalf("apply status: %v", err)
	}
	if ctrl.Status.Phase != v1alpha1.ClusterProvisioning || len(ctrl.Status.Conditions) != 1 {
		t.Errorf("status apply lost: %+v", ctrl.Status)
	}
	if len(ctrl.Spec.Administrators) != 2 {
		t.Errorf("administrators of two managers: %v, want both", ctrl.Spec.Administrators)
	}
	managers := map[string]bool{}
	for _, f := range ctrl.ManagedFields {
		managers[f.Manager+"/"+f.Subresource] = true
	}
	for _, m := range []string{"tenant/", "ops-team/", "provisioner/status"} {
		if !managers[m] {
			t.Errorf("managed fields lack %s: %v", m, managers)
		}
	}
}

func TestInvalidObjectNamesTheField(t *testing.T) {
	ctx, ns := testContext(t), env.NewTenant(t)
	bad := cluster("bad", ns)
	bad.Spec.Network = v1alpha1.ClusterNetwork{PodCIDRs: []string{"10.96.0.0/16"}, ServiceCIDRs: []string{"10.96.0.0/12"}}
	bad.Spec.Administrators = []v1alpha1.Subject{{Kind: v1alpha1.SubjectKindGroup, Name: "system:masters"}}
	_, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("create: %v, want Invalid", err)
	}
	fields := map[string]bool{}
	for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
		fields[c.Field] = true
	}
	for _, f := range []string{"spec.network.serviceCIDRs[0]", "spec.administrators[0].name"} {
		if !fields[f] {
			t.Errorf("error does not name %s: %v", f, err)
		}
	}
	if list, _ := env.CS.ContainerserviceV1alpha1().Clusters(ns).List(ctx, metav1.ListOptions{}); len(list.Items) != 0 {
		t.Errorf("a refused cluster was stored")
	}
}

func TestOpenAPIAndHealth(t *testing.T) {
	ctx := testContext(t)
	v3, err := env.Kube.Discovery().RESTClient().Get().AbsPath("/openapi/v3/apis/containerservice.ucloudstack.io/v1alpha1").DoRaw(ctx)
	if err != nil {
		t.Fatalf("OpenAPI v3 through the aggregator: %v", err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(v3, &doc); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Cluster", "Node", "Plugin", "Project"} {
		if _, ok := doc.Components.Schemas["io.ucloudstack.containerservice.v1alpha1."+kind]; !ok {
			t.Errorf("OpenAPI v3 lacks %s", kind)
		}
	}
	v2, err := env.Kube.Discovery().RESTClient().Get().AbsPath("/openapi/v2").DoRaw(ctx)
	if err != nil || !strings.Contains(string(v2), "io.ucloudstack.containerservice.v1alpha1.ClusterSpec") {
		t.Errorf("aggregated OpenAPI v2 lacks our types: %v", err)
	}

	direct := directClient(t)
	for _, path := range []string{"/livez", "/readyz", "/metrics"} {
		body, err := direct.Get().AbsPath(path).DoRaw(ctx)
		if err != nil {
			t.Errorf("GET %s on the server: %v", path, err)
			continue
		}
		if path == "/metrics" && !strings.Contains(string(body), "apiserver_request_total") {
			t.Errorf("/metrics lacks apiserver_request_total")
		}
	}
}

// TestMetadataClients is what the host's kube-controller-manager does with our resources
// (namespace deletion, garbage collection, quota): metadata-only lists and
// deletecollection from a client that prefers protobuf. Our types have no protobuf form,
// so they must be answered in JSON, never with a 500.
func TestMetadataClients(t *testing.T) {
	ctx, ns := testContext(t), env.NewTenant(t)
	clusters := env.CS.ContainerserviceV1alpha1().Clusters(ns)
	for _, name := range []string{"m1", "m2"} {
		if _, err := clusters.Create(ctx, cluster(name, ns), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	meta := metadata.NewForConfigOrDie(env.AdminConfig).Resource(v1alpha1.SchemeGroupVersion.WithResource("clusters")).Namespace(ns)
	list, err := meta.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 {
		t.Fatalf("metadata list: %v %v", list, err)
	}
	if err := meta.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatalf("deletecollection from a protobuf-preferring client: %v", err)
	}
	if left, err := clusters.List(ctx, metav1.ListOptions{}); err != nil || len(left.Items) != 0 {
		t.Errorf("after deletecollection: %v %v", left, err)
	}
}
