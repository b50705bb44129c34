// Command containerservice-apiserver serves the containerservice.ucloudstack.io API
// behind a Kubernetes aggregator. It only parses flags: pkg/registry/apiserver builds and
// runs the server.
package main

import (
	"os"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"github.com/ucloudstack/containerservice/pkg/registry/apiserver"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	o := apiserver.NewOptions()
	cmd := &cobra.Command{
		Use:   "containerservice-apiserver",
		Short: "Serve the containerservice.ucloudstack.io API (Clusters, Nodes, Plugins, Projects)",
		Long: `containerservice-apiserver serves the containerservice.ucloudstack.io API behind a
Kubernetes aggregator. It stores objects in the etcd given by --etcd-servers, or in an
embedded etcd under --data-dir when none is given.`,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.Run(cmd.Context())
		},
	}
	cmd.SetContext(ctx)
	o.AddFlags(cmd.Flags())
	os.Exit(cli.Run(cmd))
}
