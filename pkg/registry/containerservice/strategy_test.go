// Package containerservice_test checks the strategies of every kind through the shared
// spec/status mechanics, as the generic store calls them.
package containerservice_test

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/install"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/cluster"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/node"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/plugin"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/project"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
)

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	install.Install(s)
	return s
}()

func asUser(name string) context.Context {
	return genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: name})
}

func newCluster() *cs.Cluster {
	return &cs.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: "acme", ResourceVersion: "5"},
		Spec: cs.ClusterSpec{Version: cs.DefaultKubernetesVersion, ControlPlane: cs.ControlPlaneSpec{Replicas: 1},
			Network: cs.ClusterNetwork{IPFamilies: []cs.IPFamily{cs.IPv4}, PodCIDRs: []string{"10.244.0.0/16"}, ServiceCIDRs: []string{"10.96.0.0/12"}}},
	}
}

func TestCreateResetsStatusAndStartsPending(t *testing.T) {
	s := specstatus.NewStrategy(scheme, cluster.Kind)
	c := newCluster()
	c.Status = cs.ClusterStatus{Phase: cs.ClusterRunning, Version: "v9", ObservedGeneration: 7}
	c.Generation = 42
	s.PrepareForCreate(asUser("alice@example.com"), c)
	if c.Status.Phase != cs.ClusterPending || c.Status.Version != "" || c.Status.ObservedGeneration != 0 {
		t.Errorf("client-sent status survived create: %+v", c.Status)
	}
	if c.Generation != 1 {
		t.Errorf("generation = %d, want 1", c.Generation)
	}
}

func TestCreateMakesTheCreatorAdministrator(t *testing.T) {
	s := specstatus.NewStrategy(scheme, cluster.Kind)
	c := newCluster()
	s.PrepareForCreate(asUser("alice@example.com"), c)
	want := []cs.Subject{{Kind: cs.SubjectKindUser, Name: "alice@example.com"}}
	if len(c.Spec.Administrators) != 1 || c.Spec.Administrators[0] != want[0] {
		t.Errorf("administrators = %v, want %v", c.Spec.Administrators, want)
	}

	named := newCluster()
	named.Spec.Administrators = []cs.Subject{{Kind: cs.SubjectKindGroup, Name: "ops"}}
	s.PrepareForCreate(asUser("alice@example.com"), named)
	if len(named.Spec.Administrators) != 1 || named.Spec.Administrators[0].Name != "ops" {
		t.Errorf("given administrators were replaced: %v", named.Spec.Administrators)
	}

	bySystem := newCluster()
	s.PrepareForCreate(asUser("system:serviceaccount:acme:ci"), bySystem)
	if len(bySystem.Spec.Administrators) != 0 {
		t.Errorf("a built-in identity became administrator: %v", bySystem.Spec.Administrators)
	}
}

func TestUpdateKeepsStatusAndCountsSpecChanges(t *testing.T) {
	s := specstatus.NewStrategy(scheme, cluster.Kind)
	old := newCluster()
	old.Generation = 3
	old.Status = cs.ClusterStatus{Phase: cs.ClusterRunning}

	sameSpec := old.DeepCopy()
	sameSpec.Status.Phase = cs.ClusterFailed
	sameSpec.Labels = map[string]string{"team": "a"}
	s.PrepareForUpdate(context.Background(), sameSpec, old)
	if sameSpec.Status.Phase != cs.ClusterRunning {
		t.Errorf("status written through the main resource: %s", sameSpec.Status.Phase)
	}
	if sameSpec.Generation != 3 {
		t.Errorf("generation = %d after a metadata-only change, want 3", sameSpec.Generation)
	}

	newSpec := old.DeepCopy()
	newSpec.Spec.ControlPlane.Replicas = 3
	newSpec.Generation = 99 // clients cannot set it
	s.PrepareForUpdate(context.Background(), newSpec, old)
	if newSpec.Generation != 4 {
		t.Errorf("generation = %d after a spec change, want 4", newSpec.Generation)
	}
}

func TestStatusUpdateKeepsSpec(t *testing.T) {
	s := specstatus.NewStatusStrategy(specstatus.NewStrategy(scheme, cluster.Kind))
	old := newCluster()
	old.Generation = 2
	upd := old.DeepCopy()
	upd.Spec.ControlPlane.Replicas = 3
	upd.Status.Phase = cs.ClusterRunning
	s.PrepareForUpdate(context.Background(), upd, old)
	if upd.Spec.ControlPlane.Replicas != 1 {
		t.Errorf("spec written through status: replicas = %d", upd.Spec.ControlPlane.Replicas)
	}
	if upd.Status.Phase != cs.ClusterRunning || upd.Generation != 2 {
		t.Errorf("status update lost: phase %s generation %d", upd.Status.Phase, upd.Generation)
	}
	if errs := s.ValidateUpdate(context.Background(), upd, old); len(errs) != 0 {
		t.Errorf("valid status refused: %v", errs)
	}
}

func TestResetFieldsForServerSideApply(t *testing.T) {
	main := specstatus.NewStrategy(scheme, cluster.Kind)
	status := specstatus.NewStatusStrategy(main)
	gv := "containerservice.ucloudstack.io/v1alpha1"
	if got := main.GetResetFields()[fieldpath.APIVersion(gv)].String(); got != ".status" {
		t.Errorf("main resource resets %q, want .status", got)
	}
	if got := status.GetResetFields()[fieldpath.APIVersion(gv)].String(); got != ".spec" {
		t.Errorf("status resets %q, want .spec", got)
	}
}

func TestProjectNamespaceDefaultsToItsName(t *testing.T) {
	s := specstatus.NewStrategy(scheme, project.NewKind(nil))
	p := &cs.Project{ObjectMeta: metav1.ObjectMeta{Name: "payments-x7k2", Namespace: "acme"}}
	s.PrepareForCreate(context.Background(), p)
	if p.Spec.Namespace != "payments-x7k2" || p.Status.Phase != cs.ProjectPending {
		t.Errorf("namespace %q phase %q", p.Spec.Namespace, p.Status.Phase)
	}
	given := &cs.Project{ObjectMeta: metav1.ObjectMeta{Name: "payments"}, Spec: cs.ProjectSpec{Namespace: "pay"}}
	s.PrepareForCreate(context.Background(), given)
	if given.Spec.Namespace != "pay" {
		t.Errorf("given namespace replaced by %q", given.Spec.Namespace)
	}
}

// TestSelectableFieldsMatchTheScheme guards the two lists that must agree: the fields the
// scheme lets clients select on and the fields the registry computes for each object.
func TestSelectableFieldsMatchTheScheme(t *testing.T) {
	enabled := true
	objects := map[string]func() (map[string]string, error){
		"Cluster": func() (map[string]string, error) {
			_, f, err := specstatus.NewStrategy(scheme, cluster.Kind).GetAttrs(newCluster())
			return f, err
		},
		"Node": func() (map[string]string, error) {
			_, f, err := specstatus.NewStrategy(scheme, node.NewKind(nil)).GetAttrs(&cs.Node{Spec: cs.NodeSpec{ClusterName: "prod", Resources: cs.NodeResources{CPU: resource.MustParse("1")}}})
			return f, err
		},
		"Plugin": func() (map[string]string, error) {
			_, f, err := specstatus.NewStrategy(scheme, plugin.NewKind(nil)).GetAttrs(&cs.Plugin{Spec: cs.PluginSpec{ClusterName: "prod", Type: "csi", Enabled: &enabled}})
			return f, err
		},
		"Project": func() (map[string]string, error) {
			_, f, err := specstatus.NewStrategy(scheme, project.NewKind(nil)).GetAttrs(&cs.Project{})
			return f, err
		},
	}
	for kind, attrs := range objects {
		fields, err := attrs()
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		want := append([]string{"metadata.name", "metadata.namespace"}, v1alpha1.FieldSelectors[kind]...)
		if len(fields) != len(want) {
			t.Errorf("%s: registry computes %v, scheme allows %v", kind, fields, want)
		}
		for _, f := range want {
			if _, ok := fields[f]; !ok {
				t.Errorf("%s: scheme allows selecting on %s but the registry does not compute it", kind, f)
			}
			if _, _, err := scheme.ConvertFieldLabel(v1alpha1.SchemeGroupVersion.WithKind(kind), f, "x"); err != nil {
				t.Errorf("%s: %v", kind, err)
			}
		}
		if _, _, err := scheme.ConvertFieldLabel(v1alpha1.SchemeGroupVersion.WithKind(kind), "spec.nothing", "x"); err == nil {
			t.Errorf("%s: an unknown field label was accepted", kind)
		}
	}
}

func TestGetAttrsRefusesOtherKinds(t *testing.T) {
	if _, _, err := specstatus.NewStrategy(scheme, cluster.Kind).GetAttrs(&cs.Node{}); err == nil {
		t.Error("a Node was accepted as a Cluster")
	}
}

func TestOnlyTheProvisionerRemovesTheClusterFinalizer(t *testing.T) {
	s := specstatus.NewStrategy(scheme, cluster.Kind)
	status := specstatus.NewStatusStrategy(s)
	old := newCluster()
	old.Finalizers = []string{v1alpha1.ClusterFinalizer, "example.com/other"}
	stripped := old.DeepCopy()
	stripped.Finalizers = []string{"example.com/other"}

	tenant := genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: "bob", Groups: []string{"system:authenticated"}})
	if errs := s.ValidateUpdate(tenant, stripped, old); len(errs) != 1 || errs[0].Field != "metadata.finalizers" {
		t.Errorf("a tenant removes the finalizer: %v, want one error on metadata.finalizers", errs)
	}
	if errs := status.ValidateUpdate(tenant, stripped, old); len(errs) != 1 {
		t.Errorf("a tenant removes the finalizer through /status: %v", errs)
	}
	provisioner := genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: "system:apiserver", Groups: []string{"system:masters"}})
	if errs := s.ValidateUpdate(provisioner, stripped, old); len(errs) != 0 {
		t.Errorf("the provisioner removes the finalizer: %v", errs)
	}
	other := old.DeepCopy()
	other.Finalizers = []string{v1alpha1.ClusterFinalizer}
	if errs := s.ValidateUpdate(tenant, other, old); len(errs) != 0 {
		t.Errorf("a tenant removes another finalizer: %v", errs)
	}
}

// TestReferencesAreCheckedOnSpecChangesOnly: removing a finalizer or a label from a Node
// whose cluster is gone goes through; a spec change is checked.
func TestReferencesAreCheckedOnSpecChangesOnly(t *testing.T) {
	calls := 0
	kind := node.NewKind(nil)
	kind.References = func(context.Context, *cs.Node, *cs.Node) field.ErrorList {
		calls++
		return field.ErrorList{field.NotFound(field.NewPath("spec", "clusterName"), "prod")}
	}
	strategy := specstatus.NewStrategy(scheme, kind)
	old := &cs.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: "acme", ResourceVersion: "3", Finalizers: []string{v1alpha1.NodeFinalizer}},
		Spec: cs.NodeSpec{ClusterName: "prod", Resources: cs.NodeResources{CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi"), Pods: 110}}}
	n := old.DeepCopy()
	n.Finalizers = nil
	if errs := strategy.ValidateUpdate(asUser("alice"), n, old); len(errs) != 0 || calls != 0 {
		t.Errorf("finalizer removal: %v (references looked up %d times)", errs, calls)
	}
	n.Spec.Unschedulable = true
	if errs := strategy.ValidateUpdate(asUser("alice"), n, old); len(errs) != 1 || calls != 1 {
		t.Errorf("spec change: %v (references looked up %d times)", errs, calls)
	}
}
