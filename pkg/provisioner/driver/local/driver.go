// Package local is the local driver: each Cluster's control plane runs as processes on
// this machine (its own etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// on loopback ports, with its own PKI and data directory), supervised and restarted when
// they die. The processes outlive the server: a restarted server adopts them.
package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
)

// Config configures the local driver.
type Config struct {
	// DataDir holds one directory per cluster (clusters/<namespace>/<name>) and the
	// quarantine.
	DataDir string
	// BinDirs maps each Kubernetes version the driver offers to the directory of its
	// etcd, kube-apiserver, kube-controller-manager and kube-scheduler binaries.
	BinDirs map[string]string
	// ExternalHost is the host name or address users reach clusters at; defaults to 127.0.0.1.
	ExternalHost string
	// MaxConcurrentStarts bounds how many control planes start at once (after a reboot,
	// every cluster would otherwise start together), and how many kube-apiservers are
	// replaced at once (clusters made together renew together); defaults to 4.
	MaxConcurrentStarts int
	// FrontBinary is containerservice-front, each cluster's front on its published port.
	FrontBinary string
}

// Driver runs control planes as local processes.
type Driver struct {
	cfg Config
	// lock is the data directory's lock file, held while this driver runs: two drivers on
	// one data directory would fight over every control plane.
	lock *os.File

	// mu guards the fields below. It is never held across I/O, key generation or waits:
	// each cluster has its own lock (instance.mu) for those.
	mu       sync.Mutex
	ports    portAllocator
	clusters map[string]*instance
	// starting holds the clusters that took a start slot, and since when.
	starting map[string]time.Time
	// surging holds the clusters whose kube-apiserver is being replaced: each runs a
	// second one meanwhile, so they are bounded like starts.
	surging map[string]bool
	closed  bool

	changes chan string
}

var _ provisioner.Driver = &Driver{}

// New returns a local driver. It fails when another driver runs on the same data
// directory.
func New(cfg Config) (*Driver, error) {
	if cfg.ExternalHost == "" {
		cfg.ExternalHost = "127.0.0.1"
	}
	if cfg.MaxConcurrentStarts < 1 {
		cfg.MaxConcurrentStarts = 4
	}
	// Absolute, so that the components' command lines (recorded, compared at adoption)
	// do not depend on the directory the server was started from.
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dataDir
	// Checked once here, not per cluster: without it no cluster can be reached, and the
	// running ones must not turn Failed over a server started with a wrong flag.
	if info, err := os.Stat(cfg.FrontBinary); cfg.FrontBinary == "" || err != nil || info.IsDir() {
		return nil, fmt.Errorf("containerservice-front, every cluster's front, is not at %q (--front-binary): build it with `make build`", cfg.FrontBinary)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.DataDir, err)
	}
	lockFile := filepath.Join(cfg.DataDir, "clusters.lock")
	lock, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", lockFile, err)
	}
	// Released by the kernel when this process ends, however it ends; the descriptor is
	// close-on-exec, so the control planes never hold it.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("another containerservice-apiserver runs the local driver on %s (%s is locked): %w", cfg.DataDir, lockFile, err)
	}
	d := &Driver{cfg: cfg, lock: lock, ports: portAllocator{taken: map[int]bool{}}, clusters: map[string]*instance{},
		starting: map[string]time.Time{}, surging: map[string]bool{}, changes: make(chan string, 100)}
	// Directories a crash left half made (claim builds each under a temporary name with
	// nothing but empty folders and its uid, then renames it into place).
	leftovers, _ := filepath.Glob(filepath.Join(cfg.DataDir, "clusters", "*", "*.new-*"))
	for _, dir := range leftovers {
		_ = os.RemoveAll(dir)
	}
	// Clusters not started yet after a restart, and quarantined ones, still own their
	// ports: reserve them so that a new cluster is never handed one.
	for _, pattern := range []string{filepath.Join(cfg.DataDir, "clusters", "*", "*", "ports.json"), filepath.Join(d.quarantineDir(), "*", "ports.json")} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			if _, err := d.ports.ports(layout{dir: filepath.Dir(f)}); err != nil {
				klog.ErrorS(err, "Cannot read the ports of a cluster", "file", f)
			}
		}
	}
	return d, nil
}

// bindAddress is where kube-apiservers listen: loopback while users reach clusters on
// loopback, every interface once the external host is another address.
func (d *Driver) bindAddress() string {
	if d.cfg.ExternalHost == "localhost" {
		return "127.0.0.1"
	}
	if ip := net.ParseIP(d.cfg.ExternalHost); ip != nil && ip.IsLoopback() {
		return "127.0.0.1"
	}
	return "0.0.0.0"
}

func key(c *v1alpha1.Cluster) string { return c.Namespace + "/" + c.Name }

func (d *Driver) layout(namespace, name string) layout {
	return layout{dir: filepath.Join(d.cfg.DataDir, "clusters", namespace, name)}
}

// binDir returns the binaries of the cluster's version or says what is missing.
func (d *Driver) binDir(version string) (string, error) {
	dir, ok := d.cfg.BinDirs[version]
	if !ok {
		var have []string
		for v := range d.cfg.BinDirs {
			have = append(have, v)
		}
		sort.Strings(have)
		return "", &provisioner.PermanentError{Err: fmt.Errorf("the local driver has no binaries for Kubernetes %s (it has %s)", version, strings.Join(have, ", "))}
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", &provisioner.PermanentError{Err: fmt.Errorf("%s for Kubernetes %s is missing from %s: run hack/kube-binaries.sh on the server's machine", b, version, dir)}
		}
	}
	return dir, nil
}

// instance is one cluster's control plane as this driver knows it.
type instance struct {
	key string
	// mu serializes everything done to this cluster: start, rotation, renewal, deletion,
	// quarantine. Different clusters never wait for each other.
	mu sync.Mutex
	// gone is set once the instance is deleted or quarantined: whoever waited for mu
	// looks the cluster up again.
	gone bool

	// Set once by prepare, before certs is stored; read without mu after certs.Load()
	// returns non-nil.
	uid    string
	layout layout
	ports  map[string]int
	// certs are the cluster's authorities; a rotation stores a new value.
	certs atomic.Pointer[certs]

	// Under mu.
	specs      map[string]supervisor.Component
	components map[string]*supervisor.Supervised
	// slot is the kube-apiserver slot that serves (or will once ready); surge is set
	// while the other slot's kube-apiserver is being replaced by it.
	slot  int
	surge *surge
	// surgeWanted asks for kube-apiserver to be replaced once a surge may start.
	surgeWanted bool
	// frontGeneration is the Generation of the front's config last written.
	frontGeneration int64
	// rollingOut is set while components restart to apply a change the driver made
	// (renewal, a new configuration) and cleared once all are healthy again.
	rollingOut bool
	// restartAdopted asks for processes adopted from before to be restarted in place:
	// their certificates were issued again.
	restartAdopted bool
	// startErr says why a component could neither be adopted nor started.
	startErr map[string]error

	access accessCache
}

// lockInstance returns the cluster's instance, created empty if new, with its lock held.
func (d *Driver) lockInstance(k string) (*instance, error) {
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, errors.New("the driver is shutting down")
		}
		inst := d.clusters[k]
		if inst == nil {
			inst = &instance{key: k, components: map[string]*supervisor.Supervised{}, startErr: map[string]error{}}
			d.clusters[k] = inst
		}
		d.mu.Unlock()
		inst.mu.Lock()
		if !inst.gone {
			return inst, nil
		}
		inst.mu.Unlock()
	}
}

// forget removes the instance (its lock held) from the driver.
func (d *Driver) forget(inst *instance) {
	inst.gone = true
	d.mu.Lock()
	if d.clusters[inst.key] == inst {
		delete(d.clusters, inst.key)
	}
	delete(d.starting, inst.key)
	delete(d.surging, inst.key)
	d.mu.Unlock()
}

// running returns the instance of a prepared cluster with that UID, without locking it.
func (d *Driver) running(c *v1alpha1.Cluster) (*instance, *certs, error) {
	d.mu.Lock()
	inst := d.clusters[key(c)]
	d.mu.Unlock()
	if inst == nil {
		return nil, nil, errors.New("the cluster's control plane is not running yet")
	}
	crts := inst.certs.Load()
	if crts == nil || inst.uid != string(c.UID) {
		return nil, nil, errors.New("the cluster's control plane is not running yet")
	}
	return inst, crts, nil
}

// Ensure prepares the cluster's directory, PKI and ports when missing, starts or adopts
// its processes, and reports each component's health.
func (d *Driver) Ensure(ctx context.Context, c *v1alpha1.Cluster) (*provisioner.Observation, error) {
	bin, err := d.binDir(c.Spec.Version)
	if err != nil {
		return nil, err
	}
	inst, err := d.lockInstance(key(c))
	if err != nil {
		return nil, err
	}
	defer inst.mu.Unlock()
	if inst.certs.Load() == nil {
		if err := d.prepare(inst, c, bin); err != nil {
			return nil, err
		}
	} else if inst.uid != string(c.UID) {
		// Only possible if the earlier Cluster's deletion has not been handled yet.
		return nil, fmt.Errorf("the control plane of an earlier cluster named %s (uid %s) is still being removed", key(c), inst.uid)
	}
	if err := d.renewIfExpiring(inst); err != nil {
		return nil, err
	}
	if waiting := d.startCore(inst); waiting != "" {
		return d.waitingObservation(inst, c, waiting), nil
	}
	if inst.surgeWanted && inst.surge == nil && inst.components[slotComponent(inst.slot)] != nil {
		inst.surgeWanted = false
		d.replaceAPIServer(inst)
	}
	d.progressSurge(inst)
	obs := d.observe(ctx, inst, c)
	if obs.Components[provisioner.APIServer].Healthy {
		d.releaseSlot(inst.key)
		d.startClients(inst)
	}
	if inst.rollingOut && obs.Ready() && inst.surge == nil && !inst.surgeWanted {
		inst.rollingOut = false
	}
	obs.Updating = inst.rollingOut || inst.surge != nil || inst.surgeWanted
	return obs, nil
}

// Delete stops the control plane and removes its directory, if it belongs to the Cluster
// with that UID; a quarantined copy of it goes too.
func (d *Driver) Delete(_ context.Context, namespace, name, uid string) error {
	if uid == "" {
		return errors.New("delete needs the cluster's UID")
	}
	inst, err := d.lockInstance(namespace + "/" + name)
	if err != nil {
		return err
	}
	defer inst.mu.Unlock()
	l := d.layout(namespace, name)
	if q := d.quarantined(uid); q != "" {
		if err := d.removeDir(layout{dir: q}); err != nil {
			return err
		}
	}
	owner, err := l.uid()
	if err != nil {
		return err
	}
	if _, err := os.Stat(l.dir); os.IsNotExist(err) || owner != uid {
		// Nothing of this cluster (a directory of another UID is someone else's).
		if owner != "" && owner != uid {
			klog.InfoS("Not deleting a control plane of another cluster of the same name", "cluster", inst.key, "uid", uid, "owner", owner)
		}
		if inst.certs.Load() == nil || inst.uid == uid {
			// Supervised processes of this UID whose directory vanished stop too; records
			// in the directory, if any, are another cluster's.
			_ = d.stopAll(inst, nil)
			d.forget(inst)
		}
		return nil
	}
	if err := d.stopAll(inst, &l); err != nil {
		// A process that may still run keeps its directory.
		return fmt.Errorf("stop the control plane of %s: %w", inst.key, err)
	}
	if err := d.removeDir(l); err != nil {
		return err
	}
	d.forget(inst)
	// The namespace directory goes too once its last cluster is gone.
	_ = os.Remove(filepath.Dir(l.dir))
	klog.InfoS("Deleted control plane", "cluster", inst.key, "uid", uid)
	return nil
}

// removeDir removes a cluster's directory and releases its ports. A corrupt ports.json
// never blocks it: the ports stay reserved until the next start instead.
func (d *Driver) removeDir(l layout) error {
	ports, perr := readPorts(l)
	if perr != nil {
		klog.ErrorS(perr, "Ports of a deleted cluster stay reserved until the server restarts", "dir", l.dir)
	}
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("remove %s: %w", l.dir, err)
	}
	d.mu.Lock()
	d.ports.release(ports)
	d.mu.Unlock()
	return nil
}

// stopAll stops the cluster's processes in reverse start order: those this driver
// supervises, and, with the cluster's layout, any recorded there that still run (adopted
// by nobody yet). It fails when a recorded process may still run.
func (d *Driver) stopAll(inst *instance, l *layout) error {
	var errs []error
	for i := len(allComponents) - 1; i >= 0; i-- {
		name := allComponents[i]
		if sup := inst.components[name]; sup != nil {
			sup.Stop()
			delete(inst.components, name)
		}
	}
	inst.surge, inst.surgeWanted = nil, false
	if l != nil {
		errs = stopRecorded(*l)
	}
	d.releaseSlot(inst.key)
	d.endSurge(inst.key)
	return errors.Join(errs...)
}

// Changes delivers the clusters one of whose processes exited.
func (d *Driver) Changes() <-chan string { return d.changes }

// Shutdown stops supervising every control plane and leaves them running: a restart of
// the server (an upgrade, a crash) is no outage for any tenant. The next driver on this
// data directory adopts them.
func (d *Driver) Shutdown() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	insts := d.clusters
	d.clusters = map[string]*instance{}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Go(func() {
			inst.mu.Lock()
			defer inst.mu.Unlock()
			for _, sup := range inst.components {
				sup.Detach()
			}
			inst.gone = true
		})
	}
	wg.Wait()
	d.lock.Close()
	klog.InfoS("Stopped supervising; control planes keep running", "clusters", len(insts))
}

// StopControlPlanes stops every control plane recorded under dataDir, whoever started
// it, proving each process's identity first. It is for the end of a local stack (Ctrl-C
// of `make run`, the end of a test run), never for a server's own shutdown.
func StopControlPlanes(dataDir string) {
	dirs, _ := filepath.Glob(filepath.Join(dataDir, "clusters", "*", "*"))
	var wg sync.WaitGroup
	for _, dir := range dirs {
		wg.Go(func() { StopControlPlane(dir) })
	}
	wg.Wait()
}

// StopControlPlane stops the recorded processes of one cluster directory, clients first.
func StopControlPlane(dir string) {
	for _, err := range stopRecorded(layout{dir: dir}) {
		klog.ErrorS(err, "Stopping a control plane process failed", "dir", dir)
	}
}

// stopRecorded stops every recorded process of the layout that still runs, clients
// first, an earlier release's kube-apiserver included.
func stopRecorded(l layout) []error {
	var errs []error
	names := recordNames()
	for i := len(names) - 1; i >= 0; i-- {
		name := names[i]
		grace := componentStopGrace
		for c, p := range processNames {
			if p == name {
				grace = stopGrace(c)
			}
		}
		if name == legacyAPIServer {
			grace = apiserverStopGrace
		}
		if err := supervisor.StopRecorded(l.record(name), grace); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errs
}
