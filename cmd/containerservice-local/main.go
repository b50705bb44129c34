// Command containerservice-local runs a whole containerservice management plane on this
// machine (host etcd, kube-apiserver and kube-controller-manager, containerservice-apiserver
// on its embedded etcd, registered through an APIService and restarted if it dies) until
// interrupted, and prints how to reach it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/issuer"
)

func main() {
	cfg := stack.Config{Progress: os.Stderr}
	flag.StringVar(&cfg.BinDir, "bin-dir", "", "directory of etcd, kube-apiserver and kubectl (printed by hack/kube-binaries.sh)")
	flag.StringVar(&cfg.ServerBinary, "server", "_output/bin/containerservice-apiserver", "containerservice-apiserver binary")
	flag.StringVar(&cfg.StateDir, "state-dir", "_output/local", "certificates, data and logs; kept between runs")
	usersFile := flag.String("users", "hack/local/users.yaml", "the local OIDC issuer's users (empty: no issuer)")
	tenantsFile := flag.String("tenants", "hack/local/tenants.yaml", "manifest of the tenants and their people's host RoleBindings, applied at start (empty: none)")
	flag.Parse()
	if abs, err := filepath.Abs(cfg.StateDir); err == nil {
		cfg.StateDir = abs
	}
	if cfg.BinDir == "" {
		fmt.Fprintln(os.Stderr, "containerservice-local: --bin-dir is required (run `make run`, which builds everything)")
		os.Exit(2)
	}

	if *usersFile != "" {
		users, err := issuer.LoadUsers(*usersFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "containerservice-local: %v\n", err)
			os.Exit(2)
		}
		cfg.Users = users
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "containerservice-local: %v\n", err)
		os.Exit(1)
	}
	if *tenantsFile != "" {
		manifest, err := os.ReadFile(*tenantsFile)
		if err == nil {
			_, err = s.Kubectl(ctx, manifest, "apply", "-f", "-")
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "containerservice-local: apply %s: %v\n", *tenantsFile, err)
		}
	}
	tools, _ := filepath.Abs(filepath.Dir(cfg.ServerBinary))
	fmt.Printf(`
containerservice is running. Reach it with kubectl:

  export KUBECONFIG=%s
  export PATH=%s:%s:$PATH
  kubectl apply -f artifacts/examples/          # tenants acme and globex exist already
  kubectl get clusters,csnode,plugins,projects -n acme
`, s.Kubeconfig, tools, cfg.BinDir)
	if is := s.Issuer(); is != nil {
		fmt.Printf(`
OIDC issuer: %s (people in %s; their tenant roles in %s)
  a token:  containerservice-oidc token --issuer %s --ca %s --username alice@example.com --password alice
  as alice: CONTAINERSERVICE_USERNAME=alice@example.com CONTAINERSERVICE_PASSWORD=alice kubectl --kubeconfig prod.kubeconfig get ns
            (prod.kubeconfig from: kubectl get --raw /apis/containerservice.ucloudstack.io/v1alpha1/namespaces/acme/clusters/prod/kubeconfig)
`, is.URL(), *usersFile, *tenantsFile, is.URL(), s.CAFile())
	}
	fmt.Printf(`
Logs are in %s/logs. If containerservice-apiserver dies, it is started again and
adopts the user clusters, which keep running. Press Ctrl-C to stop everything, user
clusters included; objects and data are kept for the next start.
`, cfg.StateDir)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping")
	s.Stop()
}
