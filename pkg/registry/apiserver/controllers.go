package apiserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/uuid"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	componentbaseconfig "k8s.io/component-base/config"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	csinformers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions"
	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
	clustercontroller "github.com/ucloudstack/containerservice/pkg/provisioner/controllers/cluster"
	nodecontroller "github.com/ucloudstack/containerservice/pkg/provisioner/controllers/node"
	plugincontroller "github.com/ucloudstack/containerservice/pkg/provisioner/controllers/plugin"
	projectcontroller "github.com/ucloudstack/containerservice/pkg/provisioner/controllers/project"
	"github.com/ucloudstack/containerservice/pkg/provisioner/reconciler"
)

// addControllers runs the provisioner's controllers once the server serves: Events to the
// host, and, with leader election, only while this server holds the lease. Each term gets
// one shared informer factory over our API (through the loopback client) for all its
// controllers.
func (c CompletedConfig) addControllers(server *genericapiserver.GenericAPIServer) error {
	extra, driver := c.extra, c.extra.Driver
	var host kubernetes.Interface
	if c.client != nil {
		var err error
		if host, err = kubernetes.NewForConfig(c.client); err != nil {
			return fmt.Errorf("host client: %w", err)
		}
	}
	if extra.LeaderElection.LeaderElect && host == nil {
		return errors.New("--leader-elect needs the host kube-apiserver (--kubeconfig, or the in-cluster configuration)")
	}
	// The controllers write to this very server: a hundred nodes or members at once go
	// at the speed it takes, not at the loopback client's default rate.
	loopback := rest.CopyConfig(c.generic.LoopbackClientConfig)
	loopback.QPS, loopback.Burst = 500, 1000
	client, err := versioned.NewForConfig(loopback)
	if err != nil {
		return fmt.Errorf("controller client: %w", err)
	}
	recorder, stopEvents := reconciler.NewRecorder(host, Scheme, "containerservice-provisioner")
	run := func(ctx context.Context) {
		informers := csinformers.NewSharedInformerFactory(client, 0)
		clusters, err := clustercontroller.New(client, informers.Containerservice().V1alpha1().Clusters(),
			informers.Containerservice().V1alpha1().Nodes(), driver, recorder)
		if err != nil {
			klog.ErrorS(err, "Cannot start the cluster controller")
			return
		}
		projects, err := projectcontroller.New(client, host, informers.Containerservice().V1alpha1().Projects(),
			informers.Containerservice().V1alpha1().Clusters(), driver, recorder)
		if err != nil {
			klog.ErrorS(err, "Cannot start the project controller")
			return
		}
		nodes, err := nodecontroller.New(client, informers.Containerservice().V1alpha1().Nodes(),
			informers.Containerservice().V1alpha1().Clusters(), driver, recorder)
		if err != nil {
			klog.ErrorS(err, "Cannot start the node controller")
			return
		}
		plugins, err := plugincontroller.New(client, informers.Containerservice().V1alpha1().Plugins(),
			informers.Containerservice().V1alpha1().Clusters(), driver, recorder)
		if err != nil {
			klog.ErrorS(err, "Cannot start the plugin controller")
			return
		}
		informers.Start(ctx.Done())
		go projects.Run(ctx, extra.Workers)
		go plugins.Run(ctx, extra.Workers)
		go nodes.Run(ctx, extra.Workers)
		clusters.Run(ctx, extra.Workers)
		informers.Shutdown()
	}
	server.AddPostStartHookOrDie("start-containerservice-provisioner", func(hook genericapiserver.PostStartHookContext) error {
		if !extra.LeaderElection.LeaderElect {
			go func() {
				defer stopEvents()
				run(hook)
			}()
			return nil
		}
		id, err := leaderIdentity(extra.DataDir)
		if err != nil {
			return err
		}
		go func() {
			defer stopEvents()
			lead(hook, extra.LeaderElection, host, recorder, id, run)
		}()
		return nil
	})
	return nil
}

// lead competes for the lease until the server stops, running the controllers for each
// term it holds it. A lost lease (the host unreachable for longer than the renew
// deadline) stops the controllers and competes again; the API keeps serving meanwhile.
func lead(serving context.Context, le componentbaseconfig.LeaderElectionConfiguration, host kubernetes.Interface, recorder record.EventRecorder, id string, run func(context.Context)) {
	// term is held while a term's controllers run; the next term waits for it. (A term
	// whose start is still on its way when the lease is lost finds its context ended
	// and does nothing.)
	var term sync.Mutex
	for serving.Err() == nil {
		lock, err := resourcelock.New(le.ResourceLock, le.ResourceNamespace, le.ResourceName, host.CoreV1(), host.CoordinationV1(),
			resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder})
		if err == nil {
			var elector *leaderelection.LeaderElector
			elector, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
				Lock:            lock,
				LeaseDuration:   le.LeaseDuration.Duration,
				RenewDeadline:   le.RenewDeadline.Duration,
				RetryPeriod:     le.RetryPeriod.Duration,
				ReleaseOnCancel: true,
				Name:            le.ResourceName,
				Callbacks: leaderelection.LeaderCallbacks{
					OnStartedLeading: func(ctx context.Context) {
						term.Lock()
						defer term.Unlock()
						klog.InfoS("Leading: running the provisioner's controllers", "identity", id)
						run(ctx)
					},
					OnStoppedLeading: func() {
						if serving.Err() == nil {
							klog.ErrorS(nil, "Lost the provisioner's lease; controllers stop and compete again", "identity", id)
						}
					},
				},
			})
			if err == nil {
				elector.Run(serving)
			}
		}
		if err != nil {
			// Validate checked the settings; this is not expected to happen.
			klog.ErrorS(err, "Cannot run leader election; the provisioner's controllers do not run")
			return
		}
		// The next term starts once this one's controllers have stopped.
		term.Lock()
		term.Unlock() //nolint:staticcheck // waiting, not guarding
	}
}

// leaderIdentity is this server's identity in leader election: the host name and a
// random id kept in the data directory. Stable across restarts, so that a restarted
// server takes its lease back at once instead of waiting for it to expire (the local
// driver's lock on the data directory keeps a second server of the same identity out),
// and unique per machine even when host names repeat.
func leaderIdentity(dataDir string) (string, error) {
	file := filepath.Join(dataDir, "leader-identity")
	if data, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(data))) > 0 {
		return strings.TrimSpace(string(data)), nil
	}
	hostname, err := os.Hostname()
	if err != nil {
		return "", err
	}
	id := hostname + "_" + string(uuid.NewUUID())
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(file, []byte(id), 0o600); err != nil {
		return "", fmt.Errorf("keep the leader-election identity: %w", err)
	}
	return id, nil
}
