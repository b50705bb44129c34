package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	csinformers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/clustercontroller"
	"github.com/ucloudstack/containerservice/pkg/provisioner/controller"
)

// addProvisioner runs the provisioner's controllers once the server serves: one shared
// informer factory over our API (through the loopback client), Events to the host, and,
// with leader election, only while this server holds the lease.
func (o *Options) addProvisioner(server *genericapiserver.GenericAPIServer, config *genericapiserver.RecommendedConfig, driver provisioner.Driver) error {
	var host kubernetes.Interface
	if config.ClientConfig != nil {
		var err error
		if host, err = kubernetes.NewForConfig(config.ClientConfig); err != nil {
			return fmt.Errorf("host client: %w", err)
		}
	}
	if o.LeaderElection.LeaderElect && host == nil {
		return errors.New("--leader-elect needs the host kube-apiserver (--kubeconfig, or in-cluster configuration); use --leader-elect=false on a single replica without one")
	}
	client, err := versioned.NewForConfig(config.LoopbackClientConfig)
	if err != nil {
		return fmt.Errorf("controller client: %w", err)
	}
	informers := csinformers.NewSharedInformerFactory(client, 0)
	recorder, stopEvents := controller.NewRecorder(host, Scheme, "containerservice-provisioner")
	clusters, err := clustercontroller.New(client, informers.Containerservice().V1alpha1().Clusters(), driver, recorder)
	if err != nil {
		return err
	}
	run := func(ctx context.Context) {
		informers.Start(ctx.Done())
		clusters.Run(ctx, o.Workers)
	}
	server.AddPostStartHookOrDie("start-containerservice-provisioner", func(hook genericapiserver.PostStartHookContext) error {
		go func() {
			<-hook.Done()
			stopEvents()
		}()
		if !o.LeaderElection.LeaderElect {
			go run(hook)
			return nil
		}
		elector, err := o.leaderElector(hook, host, recorder, run)
		if err != nil {
			return err
		}
		go elector.Run(hook)
		return nil
	})
	return nil
}

// leaderElector runs the controllers while this server holds the lease. Its identity is
// stable across restarts of the same server (host and data directory), so a restarted
// server takes its lease back at once instead of waiting for it to expire; the local
// driver's lock on the data directory keeps a second server of the same identity out.
func (o *Options) leaderElector(serving context.Context, host kubernetes.Interface, recorder resourcelock.EventRecorder, run func(context.Context)) (*leaderelection.LeaderElector, error) {
	hostname, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	dir, _ := filepath.Abs(o.DataDir)
	sum := sha256.Sum256([]byte(dir))
	id := hostname + "_" + hex.EncodeToString(sum[:4])
	le := o.LeaderElection
	lock, err := resourcelock.New(le.ResourceLock, le.ResourceNamespace, le.ResourceName, host.CoreV1(), host.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration.Duration,
		RenewDeadline:   le.RenewDeadline.Duration,
		RetryPeriod:     le.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		Name:            le.ResourceName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				klog.InfoS("Leading: running the provisioner's controllers", "identity", id)
				run(ctx)
			},
			OnStoppedLeading: func() {
				if serving.Err() != nil {
					return // the server is shutting down; the lease was released
				}
				// The controllers cannot be trusted to have stopped mid-flight; a fresh
				// process competes again. User control planes keep running meanwhile.
				klog.ErrorS(nil, "Lost the provisioner's lease; exiting so that a fresh start competes again", "identity", id)
				klog.FlushAndExit(klog.ExitFlushTimeout, 1)
			},
		},
	})
}
