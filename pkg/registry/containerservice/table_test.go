package containerservice_test

import (
	"context"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	clusterstorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/cluster/storage"
	nodestorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/node/storage"
)

func TestClusterTable(t *testing.T) {
	c := newCluster()
	c.Status = cs.ClusterStatus{Phase: cs.ClusterRunning, Version: "v1.37.1",
		Endpoints: cs.ClusterEndpoints{Internal: "https://10.0.0.1:6443", External: "https://prod.example.com"},
		Nodes:     cs.NodeCounts{Ready: 2, Total: 3}}
	list := &cs.ClusterList{ListMeta: metav1.ListMeta{ResourceVersion: "77", Continue: "next"}, Items: []cs.Cluster{*c}}
	tbl, err := clusterstorage.Table.ConvertToTable(context.Background(), list, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range tbl.ColumnDefinitions {
		if d.Priority == 0 {
			names = append(names, d.Name)
		}
	}
	if want := []string{"Name", "Status", "Version", "Nodes", "Endpoint", "Age"}; !reflect.DeepEqual(names, want) {
		t.Errorf("default columns %v, want %v", names, want)
	}
	if tbl.ResourceVersion != "77" || tbl.Continue != "next" {
		t.Errorf("list metadata lost: %q %q", tbl.ResourceVersion, tbl.Continue)
	}
	cells := tbl.Rows[0].Cells
	want := []any{"prod", "Running", "v1.37.1", "2/3", "https://prod.example.com", int64(1), "IPv4", "<unknown>"}
	if !reflect.DeepEqual(cells, want) {
		t.Errorf("cells %v, want %v", cells, want)
	}

	noHeaders, err := clusterstorage.Table.ConvertToTable(context.Background(), c, &metav1.TableOptions{NoHeaders: true})
	if err != nil || len(noHeaders.ColumnDefinitions) != 0 || len(noHeaders.Rows) != 1 {
		t.Errorf("single object without headers: %v %+v", err, noHeaders)
	}
	if _, err := clusterstorage.Table.ConvertToTable(context.Background(), &cs.Node{}, nil); err == nil {
		t.Error("a Node rendered in the cluster table")
	}
}

func TestNodeTableShowsGPUsAndCordon(t *testing.T) {
	n := &cs.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-1"}, Spec: cs.NodeSpec{ClusterName: "prod", Unschedulable: true,
		Resources: cs.NodeResources{CPU: resource.MustParse("8"), Memory: resource.MustParse("32Gi"), GPU: &cs.GPUResources{Count: 2, Model: "nvidia-tesla-t4"}}},
		Status: cs.NodeStatus{Phase: cs.NodeReady, Pods: 5, KubeletVersion: "v1.37.1",
			Addresses: []cs.NodeAddress{{Type: "Hostname", Address: "gpu-1"}, {Type: "InternalIP", Address: "10.0.0.7"}}}}
	tbl, err := nodestorage.Table.ConvertToTable(context.Background(), n, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"gpu-1", "prod", "Ready,SchedulingDisabled", "8", "32Gi", "2 nvidia-tesla-t4", int64(5), "10.0.0.7", "v1.37.1", "<unknown>"}
	if got := tbl.Rows[0].Cells; !reflect.DeepEqual(got, want) {
		t.Errorf("cells %v, want %v", got, want)
	}
}
