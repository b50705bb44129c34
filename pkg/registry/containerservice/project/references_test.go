package project

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

type clusters map[string]bool

func (c clusters) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	if c[name] {
		return &cs.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}}, nil
	}
	return nil, apierrors.NewNotFound(cs.Resource("clusters"), name)
}

type projects []cs.Project

func (p projects) NewList() runtime.Object { return &cs.ProjectList{} }
func (p projects) List(context.Context, *metainternalversion.ListOptions) (runtime.Object, error) {
	return &cs.ProjectList{Items: p}, nil
}
func (p projects) ConvertToTable(context.Context, runtime.Object, runtime.Object) (*metav1.Table, error) {
	return nil, nil
}

var _ rest.Lister = projects{}

// TestANamespaceIsHeldWhileItsProjectLeaves: a project still leaving a cluster (listed in
// its status, no longer in its spec) holds its namespace there, as one asking for it does.
func TestANamespaceIsHeldWhileItsProjectLeaves(t *testing.T) {
	leaving := cs.Project{ObjectMeta: metav1.ObjectMeta{Name: "old"}, Spec: cs.ProjectSpec{Namespace: "pay-v2", Clusters: []string{"dev"}},
		Status: cs.ProjectStatus{Clusters: []cs.ProjectClusterStatus{{Name: "prod", Namespace: "pay"}}}}
	refs := &References{Clusters: clusters{"prod": true, "dev": true}, Projects: projects{leaving}}
	p := &cs.Project{ObjectMeta: metav1.ObjectMeta{Name: "new"}, Spec: cs.ProjectSpec{Namespace: "pay", Clusters: []string{"dev", "prod"}}}
	errs := refs.Check(context.Background(), p, nil)
	if len(errs) != 1 || errs[0].Field != "spec.clusters[1]" {
		t.Errorf("errors %v, want spec.clusters[1] (prod, where old is still leaving pay)", errs)
	}
	p.Spec.Clusters = []string{"dev", "ghost"}
	if errs := refs.Check(context.Background(), p, nil); len(errs) != 1 || errs[0].Field != "spec.clusters[1]" || errs[0].Type != "FieldValueNotFound" {
		t.Errorf("errors %v, want spec.clusters[1] not found", errs)
	}
}
