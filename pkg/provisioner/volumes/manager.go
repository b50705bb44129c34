package volumes

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

const (
	// resync is how often a provisioner looks at every claim and volume again: what
	// failed past its retries (a refused deletion, say) is tried again then.
	resync = 10 * time.Minute
	// operationTimeout bounds one provisioning or deletion.
	operationTimeout = time.Minute
	// saveInterval spaces the library's attempts (five) to save a provisioned volume's
	// PersistentVolume: a stopping provisioner waits for them, so they stay short.
	saveInterval = 2 * time.Second
	// workers of each cluster's provisioner: a volume is a directory, made in no time.
	workers = 2
)

// creating serializes the making of provision controllers: the library registers the
// core types in client-go's global scheme each time (the same types again), and two
// registrations at once would write its maps together. It cannot keep the scheme's
// readers (every typed client decoding in this process) away from the write: that is
// the library's to fix, by registering once.
var creating sync.Mutex

// Manager runs one provisioner per cluster. It is safe for concurrent use. Run it where
// the server's controllers run, under the server's leader election: the provisioners
// elect no leader of their own, and two of one cluster would handle the same claims.
type Manager struct {
	mu      sync.Mutex
	running map[types.UID]*running
	// run runs a cluster's provisioner until ctx ends, and returns once everything it
	// started has ended; tests replace it.
	run func(ctx context.Context, client kubernetes.Interface, root string)
	// closed is set by StopAll: nothing starts after.
	closed bool
}

// running is a cluster's provisioner.
type running struct {
	client kubernetes.Interface
	root   string
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the provisioner and waits until it has ended.
func (r *running) stop() {
	r.cancel()
	<-r.done
}

// NewManager returns a Manager that runs no provisioner yet.
func NewManager() *Manager {
	return &Manager{running: map[types.UID]*running{}, run: run}
}

// Ensure runs the provisioner of the cluster with that UID, through client, with its
// volumes in root (an absolute path, the driver's Volumes.VolumeDir). One that runs with
// the same client and root is left alone; one with another client (its credential was
// rotated) or root is stopped and replaced. client must not cut requests short: the
// provisioner's informers watch through it. It is compared by identity, so pass the same
// client while its credential is unchanged.
func (m *Manager) Ensure(uid types.UID, client kubernetes.Interface, root string) error {
	if uid == "" || client == nil || !filepath.IsAbs(root) {
		return fmt.Errorf("a volume provisioner needs a cluster UID, a client and an absolute volume directory (have %q, %q)", uid, root)
	}
	root = filepath.Clean(root)
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return fmt.Errorf("the volume provisioners were stopped for good (the server no longer leads)")
		}
		old := m.running[uid]
		if old == nil {
			m.running[uid] = m.start(uid, client, root)
			m.mu.Unlock()
			return nil
		}
		if old.client == client && old.root == root {
			m.mu.Unlock()
			return nil
		}
		delete(m.running, uid)
		m.mu.Unlock()
		// Stopped before its successor starts: two provisioners of one cluster would
		// handle the same claims.
		old.stop()
		klog.InfoS("Stopped a volume provisioner to replace it", "cluster", uid, "rootChanged", old.root != root)
	}
}

// start runs a provisioner; m.mu is held.
func (m *Manager) start(uid types.UID, client kubernetes.Interface, root string) *running {
	logger := klog.LoggerWithValues(klog.Background(), "cluster", uid)
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	r := &running{client: client, root: root, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		m.run(ctx, client, root)
	}()
	klog.InfoS("Started a volume provisioner", "cluster", uid, "root", root)
	return r
}

// Stop stops the provisioner of the cluster with that UID, if one runs, and waits until
// it has ended.
func (m *Manager) Stop(uid types.UID) {
	m.mu.Lock()
	r := m.running[uid]
	delete(m.running, uid)
	m.mu.Unlock()
	if r != nil {
		r.stop()
		klog.InfoS("Stopped a volume provisioner", "cluster", uid)
	}
}

// StopAll stops every provisioner, waits until all have ended, and refuses to start any
// after: a reconcile still finishing when the server lost its lease must not start one
// beside the new leader's.
func (m *Manager) StopAll() {
	m.mu.Lock()
	m.closed = true
	all := m.running
	m.running = map[types.UID]*running{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range all {
		wg.Go(r.stop)
	}
	wg.Wait()
	if len(all) > 0 {
		klog.InfoS("Stopped every volume provisioner", "count", len(all))
	}
}

// run runs the library's provision controller and the resizer of one cluster over one
// set of informers, leader election off (the server's controllers run under its own),
// until ctx ends; it returns once the workers and informers have ended. The library's
// own helpers (its event broadcaster, a retry set) end with ctx, a moment later.
func run(ctx context.Context, client kubernetes.Interface, root string) {
	logger := klog.FromContext(ctx)
	factory := informers.NewSharedInformerFactory(client, resync)
	claims, volumes := factory.Core().V1().PersistentVolumeClaims(), factory.Core().V1().PersistentVolumes()
	classes := factory.Storage().V1().StorageClasses()
	r, err := newResizer(client, claims, volumes)
	if err != nil {
		logger.Error(err, "The volume provisioner cannot start")
		return
	}
	creating.Lock()
	ctrl := controller.NewProvisionController(ctx, client, v1alpha1.CSIDriverName, &provisioner{client: client, root: root},
		controller.LeaderElection(false),
		controller.ClaimsInformer(claims.Informer()),
		controller.VolumesInformer(volumes.Informer()),
		controller.ClassesInformer(classes.Informer()),
		controller.ResyncPeriod(resync),
		controller.Threadiness(workers),
		controller.ProvisionTimeout(operationTimeout),
		controller.DeletionTimeout(operationTimeout),
		controller.CreateProvisionedPVInterval(saveInterval),
	)
	creating.Unlock()
	var wg sync.WaitGroup
	ctrl.ControllerWaitGroup(&wg)
	factory.Start(ctx.Done())
	wg.Go(func() { r.run(ctx) })
	ctrl.Run(ctx)
	wg.Wait()
	factory.Shutdown()
}
