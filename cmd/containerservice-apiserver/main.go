// Command containerservice-apiserver serves the containerservice.ucloudstack.io API
// behind a Kubernetes aggregator.
package main

import (
	"os"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"github.com/ucloudstack/containerservice/cmd/containerservice-apiserver/app"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	os.Exit(cli.Run(app.NewCommand(ctx)))
}
