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
)

func main() {
	cfg := stack.Config{Progress: os.Stderr}
	flag.StringVar(&cfg.BinDir, "bin-dir", "", "directory of etcd, kube-apiserver and kubectl (printed by hack/kube-binaries.sh)")
	flag.StringVar(&cfg.ServerBinary, "server", "_output/bin/containerservice-apiserver", "containerservice-apiserver binary")
	flag.StringVar(&cfg.StateDir, "state-dir", "_output/local", "certificates, data and logs; kept between runs")
	flag.Parse()
	if abs, err := filepath.Abs(cfg.StateDir); err == nil {
		cfg.StateDir = abs
	}
	if cfg.BinDir == "" {
		fmt.Fprintln(os.Stderr, "containerservice-local: --bin-dir is required (run `make run`, which builds everything)")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "containerservice-local: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf(`
containerservice is running. Reach it with kubectl:

  export KUBECONFIG=%s
  export PATH=%s:$PATH
  kubectl create namespace acme
  kubectl apply -f artifacts/examples/
  kubectl get clusters,csnode,plugins,projects -n acme

Logs are in %s/logs. If containerservice-apiserver dies, it is started again and
adopts the user clusters, which keep running. Press Ctrl-C to stop everything, user
clusters included; objects and data are kept for the next start.
`, s.Kubeconfig, cfg.BinDir, cfg.StateDir)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping")
	s.Stop()
}
