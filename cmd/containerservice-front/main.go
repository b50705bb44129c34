// Command containerservice-front is a cluster's L4 front (package
// pkg/provisioner/front) as a process of its own, which the local driver supervises and
// which outlives our server like the control plane it fronts:
//
//	containerservice-front --config FILE --status FILE
//
// It re-reads --config within a second of a change (a config that does not load is
// logged and ignored; the last good one stays), writes its status to --status every
// second, and stops on SIGTERM or SIGINT once its connections ended or its shutdown
// timeout passed.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

func main() {
	klog.InitFlags(nil)
	o := options{tick: time.Second}
	flag.StringVar(&o.config, "config", "", "the front's config (JSON); re-read when it changes")
	flag.StringVar(&o.status, "status", "", "where to write the front's status (JSON) every second")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := run(ctx, o)
	if err != nil {
		klog.ErrorS(err, "Front failed")
	}
	klog.Flush()
	if err != nil {
		os.Exit(1)
	}
}
