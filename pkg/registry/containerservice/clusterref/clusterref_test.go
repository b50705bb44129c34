package clusterref

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

// clusters is a registry stand-in holding the named clusters.
type clusters map[string]*cs.Cluster

func (c clusters) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	if cl, ok := c[name]; ok {
		return cl, nil
	}
	return nil, apierrors.NewNotFound(cs.Resource("clusters"), name)
}

func TestOnCreate(t *testing.T) {
	now := metav1.Now()
	refs := &Checker{Clusters: clusters{"prod": {}, "old": {ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}}}
	check := OnCreate(refs, func(n *cs.Node) string { return n.Spec.ClusterName })
	node := func(cluster string) *cs.Node { return &cs.Node{Spec: cs.NodeSpec{ClusterName: cluster}} }
	ctx := context.Background()
	if errs := check(ctx, node("prod"), nil); len(errs) != 0 {
		t.Errorf("an existing cluster: %v", errs)
	}
	if errs := check(ctx, node("ghost"), nil); len(errs) != 1 || errs[0].Type != field.ErrorTypeNotFound || errs[0].Field != "spec.clusterName" {
		t.Errorf("a missing cluster: %v, want NotFound on spec.clusterName", errs)
	}
	if errs := check(ctx, node("old"), nil); len(errs) != 1 || errs[0].Type != field.ErrorTypeInvalid {
		t.Errorf("a cluster being deleted: %v, want Invalid", errs)
	}
	if errs := check(ctx, node("ghost"), node("ghost")); len(errs) != 0 {
		t.Errorf("an update (the cluster cannot change) is not looked up again: %v", errs)
	}
}
