// Command etcd is the etcd server each user cluster runs, built from the same
// go.etcd.io/etcd/server module the Kubernetes release pins.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
