package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	genericoptions "k8s.io/apiserver/pkg/server/options"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	"github.com/ucloudstack/containerservice/pkg/registry/apiserver"
)

// TestServerInProcess starts the server in this test's process through
// pkg/registry/apiserver (Options → Config → Complete → New), as cmd does, with its
// embedded etcd and the stack's host for delegated authentication, authorization and
// admission, and checks that the group map wires the kinds together: every resource and
// subresource is served, and Nodes and Projects look their clusters (and Projects the
// other projects) up in the same server's stores.
func TestServerInProcess(t *testing.T) {
	ns := env.NewTenant(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	o := apiserver.NewOptions()
	o.DataDir = t.TempDir()
	o.Provisioner = "none"
	o.LeaderElection.LeaderElect = false
	ln, port, err := genericoptions.CreateListener("tcp", "127.0.0.1:0", net.ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	serving := o.Recommended.SecureServing
	serving.Listener, serving.BindPort, serving.BindAddress = ln, port, net.ParseIP("127.0.0.1")
	serving.ServerCert.CertDirectory = t.TempDir()
	o.Recommended.Authentication.RemoteKubeConfigFile = env.Kubeconfig
	o.Recommended.Authorization.RemoteKubeConfigFile = env.Kubeconfig
	o.Recommended.CoreAPI.CoreAPIKubeconfigPath = env.Kubeconfig

	config, cleanup, err := o.Config(ctx)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	defer cleanup()
	server, err := config.Complete().New()
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- server.GenericAPIServer.PrepareRun().RunWithContext(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("server stopped with %v", err)
		}
	}()

	client, err := versioned.NewForConfig(config.Generic.LoopbackClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var code int
		client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code)
		return code == http.StatusOK, nil
	}); err != nil {
		t.Fatalf("the in-process server never became ready: %v", err)
	}

	resources, err := client.Discovery().ServerResourcesForGroupVersion(v1alpha1.SchemeGroupVersion.String())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var names []string
	for _, r := range resources.APIResources {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	want := []string{"clusters", "clusters/adminkubeconfig", "clusters/kubeconfig", "clusters/proxy", "clusters/status",
		"nodes", "nodes/status", "plugins", "plugins/status", "projects", "projects/status"}
	if !slices.Equal(names, want) {
		t.Errorf("served resources %v, want %v", names, want)
	}

	cs := client.ContainerserviceV1alpha1()
	if _, err := cs.Clusters(ns).Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create cluster: %v", err)
	}
	node := func(cluster string) *v1alpha1.Node {
		return &v1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: cluster + "-1"}, Spec: v1alpha1.NodeSpec{ClusterName: cluster}}
	}
	_, err = cs.Nodes(ns).Create(ctx, node("nowhere"), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.clusterName") {
		t.Errorf("a node of a missing cluster: got %v, want Invalid naming spec.clusterName", err)
	}
	if _, err := cs.Nodes(ns).Create(ctx, node("prod"), metav1.CreateOptions{}); err != nil {
		t.Errorf("a node of prod: %v", err)
	}
	project := func(name, cluster string) *v1alpha1.Project {
		return &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.ProjectSpec{Clusters: []string{cluster}, Namespace: "payments"}}
	}
	_, err = cs.Projects(ns).Create(ctx, project("lost", "nowhere"), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.clusters[0]") {
		t.Errorf("a project of a missing cluster: got %v, want Invalid naming spec.clusters[0]", err)
	}
	if _, err := cs.Projects(ns).Create(ctx, project("payments", "prod"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create project: %v", err)
	}
	_, err = cs.Projects(ns).Create(ctx, project("second", "prod"), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "already places namespace payments") {
		t.Errorf("a second project placing the same namespace: got %v, want Invalid naming the first project", err)
	}

	// Written at the same moment, two objects that exclude each other are still never
	// both admitted: each round, several plugins of one type on one cluster, and several
	// projects placing one namespace, are created at once; exactly one of each is stored.
	for round := range 5 {
		const racers = 4
		cluster := fmt.Sprintf("race-%d", round)
		if _, err := cs.Clusters(ns).Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create cluster: %v", err)
		}
		var created [2]atomic.Int32
		var wg sync.WaitGroup
		// The loser's answer names the winner; any other failure fails the test.
		count := func(i int, what string, err error) {
			switch {
			case err == nil:
				created[i].Add(1)
			case !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "already"):
				t.Errorf("round %d: a %s refused for another reason: %v", round, what, err)
			}
		}
		start := make(chan struct{})
		for i := range racers {
			name := fmt.Sprintf("r%d-%d", round, i)
			wg.Go(func() {
				<-start
				_, err := cs.Plugins(ns).Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: name},
					Spec: v1alpha1.PluginSpec{ClusterName: cluster, Type: "csi"}}, metav1.CreateOptions{})
				count(0, "plugin", err)
			})
			wg.Go(func() {
				<-start
				_, err := cs.Projects(ns).Create(ctx, project(name, cluster), metav1.CreateOptions{})
				count(1, "project", err)
			})
		}
		close(start)
		wg.Wait()
		if n := created[0].Load(); n != 1 {
			t.Errorf("round %d: %d of %d plugins of one type on one cluster, created at once, were admitted; want 1", round, n, racers)
		}
		if n := created[1].Load(); n != 1 {
			t.Errorf("round %d: %d of %d projects placing one namespace in one cluster, created at once, were admitted; want 1", round, n, racers)
		}
	}
}
