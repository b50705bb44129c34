// Package local is the local driver: each Cluster's control plane runs as processes on
// this machine (its own etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// on loopback ports, with its own PKI and data directory), supervised and restarted when
// they die.
package local

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/bootstrap"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
)

// healthTimeout bounds one health probe of one component.
const healthTimeout = 3 * time.Second

// Config configures the local driver.
type Config struct {
	// DataDir holds one directory per cluster (clusters/<namespace>/<name>).
	DataDir string
	// BinDirs maps each Kubernetes version the driver offers to the directory of its
	// etcd, kube-apiserver, kube-controller-manager and kube-scheduler binaries.
	BinDirs map[string]string
	// ExternalHost is the host name or address users reach clusters at; defaults to 127.0.0.1.
	ExternalHost string
}

// Driver runs control planes as local processes.
type Driver struct {
	cfg   Config
	mu    sync.Mutex
	ports portAllocator
	// clusters holds the running control planes by namespace/name.
	clusters map[string]*instance
	changes  chan string
	// closed is set by Shutdown: no control plane starts after it.
	closed bool
}

// instance is one cluster's running control plane.
type instance struct {
	// uid is the UID of the Cluster object the control plane belongs to.
	uid    string
	layout layout
	ports  map[string]int
	certs  *certs
	// specs are the four components; components holds those started, under Driver.mu.
	specs      map[string]supervisor.Component
	components map[string]*supervisor.Supervised
	// bootstrapped is the generation whose administrators are applied in the cluster, and
	// bootstrappedAt when; the platform's objects are applied again after a spec change
	// and every rebootstrapEvery, which repairs whatever someone changed inside.
	bootstrapped   int64
	bootstrappedAt time.Time
}

// rebootstrapEvery is how often the platform's objects in a user cluster are re-applied.
const rebootstrapEvery = 5 * time.Minute

var _ provisioner.Driver = &Driver{}

// New returns a local driver.
func New(cfg Config) *Driver {
	if cfg.ExternalHost == "" {
		cfg.ExternalHost = "127.0.0.1"
	}
	d := &Driver{cfg: cfg, ports: portAllocator{taken: map[int]bool{}}, clusters: map[string]*instance{}, changes: make(chan string, 100)}
	// Clusters not started yet after a restart still own their ports: reserve them so that
	// a new cluster is never handed one.
	files, _ := filepath.Glob(filepath.Join(cfg.DataDir, "clusters", "*", "*", "ports.json"))
	for _, f := range files {
		if _, err := d.ports.ports(layout{dir: filepath.Dir(f)}); err != nil {
			klog.ErrorS(err, "Cannot read the ports of a cluster", "file", f)
		}
	}
	return d
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

// Ensure starts whatever of the control plane is not running, bootstraps the cluster once
// its API answers, and reports each component's health.
func (d *Driver) Ensure(ctx context.Context, c *v1alpha1.Cluster) (*provisioner.Observation, error) {
	bin, err := d.binDir(c.Spec.Version)
	if err != nil {
		return nil, err
	}
	if stale := d.staleUID(c); stale != "" {
		// A control plane left by an earlier Cluster of the same name (its finalizer
		// removed by hand, say) must never be handed to this one: its data and CAs are
		// someone else's.
		klog.InfoS("Removing the control plane of an earlier cluster of the same name", "cluster", key(c), "uid", stale)
		if err := d.Delete(ctx, c.Namespace, c.Name); err != nil {
			return nil, err
		}
	}
	inst, err := d.start(c, bin)
	if err != nil {
		return nil, err
	}
	if err := d.renewIfExpiring(c, inst); err != nil {
		return nil, err
	}
	obs := d.observe(ctx, inst, c)
	if obs.Components[provisioner.APIServer].Healthy {
		d.startClients(c, inst)
	}
	d.mu.Lock()
	due := inst.bootstrapped != c.Generation || time.Since(inst.bootstrappedAt) > rebootstrapEvery
	d.mu.Unlock()
	if obs.Components[provisioner.APIServer].Healthy && due {
		cfg, err := restConfig(inst.layout.kubeconfig("driver"))
		if err != nil {
			return obs, err
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return obs, err
		}
		if err := bootstrap.Apply(ctx, client, c); err != nil {
			return obs, fmt.Errorf("bootstrap cluster %s: %w", key(c), err)
		}
		d.mu.Lock()
		inst.bootstrapped, inst.bootstrappedAt = c.Generation, time.Now()
		d.mu.Unlock()
	}
	return obs, nil
}

// staleUID returns the UID of another Cluster whose control plane (running or on disk)
// holds this cluster's name, or "".
func (d *Driver) staleUID(c *v1alpha1.Cluster) string {
	d.mu.Lock()
	inst := d.clusters[key(c)]
	d.mu.Unlock()
	uid := d.layout(c.Namespace, c.Name).uid()
	if inst != nil {
		uid = inst.uid
	}
	if uid != "" && uid != string(c.UID) {
		return uid
	}
	return ""
}

// start creates the cluster's directory, ports and PKI when missing and supervises its
// processes; a cluster already running is returned as it is.
func (d *Driver) start(c *v1alpha1.Cluster, bin string) (*instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("the driver is shutting down")
	}
	if inst, ok := d.clusters[key(c)]; ok {
		return inst, nil
	}
	l := d.layout(c.Namespace, c.Name)
	if err := l.create(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(l.uidFile(), []byte(c.UID), 0o600); err != nil {
		return nil, err
	}
	ports, err := d.ports.ports(l)
	if err != nil {
		return nil, err
	}
	crts, err := loadCerts(l)
	if err != nil {
		return nil, fmt.Errorf("PKI of %s: %w", key(c), err)
	}
	if err := writeLeafCerts(l, crts, ports, d.cfg.ExternalHost); err != nil {
		return nil, fmt.Errorf("certificates of %s: %w", key(c), err)
	}
	inst := &instance{uid: string(c.UID), layout: l, ports: ports, certs: crts,
		specs: components(bin, l, c, ports, d.bindAddress()), components: map[string]*supervisor.Supervised{}}
	k := key(c)
	for name, spec := range inst.specs {
		spec.OnExit = func() {
			select {
			case d.changes <- k:
			default: // a burst of exits: the controller's next poll catches up
			}
		}
		inst.specs[name] = spec
	}
	// kube-controller-manager and kube-scheduler follow once kube-apiserver is ready
	// (startClients): started together, they would exit and be restarted a few times.
	for _, name := range []string{provisioner.Etcd, provisioner.APIServer} {
		inst.components[name] = supervisor.Supervise(inst.specs[name])
	}
	klog.InfoS("Started control plane", "cluster", key(c), "dir", l.dir, "apiserver", ports[portAPIServer])
	d.clusters[key(c)] = inst
	return inst, nil
}

// renewBefore is how long before they expire the components' certificates are issued
// anew (they live pki.DefaultTTL), so that a control plane running for a year keeps working.
const renewBefore = 30 * 24 * time.Hour

// renewIfExpiring issues the components' certificates again and restarts the components
// when kube-apiserver's serving certificate (issued with all the others) nears its end.
func (d *Driver) renewIfExpiring(c *v1alpha1.Cluster, inst *instance) error {
	notAfter, err := pki.NotAfter(inst.layout.pki("apiserver.crt"))
	if err != nil || time.Until(notAfter) > renewBefore {
		return err
	}
	d.mu.Lock()
	err = writeLeafCerts(inst.layout, inst.certs, inst.ports, d.cfg.ExternalHost)
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("renew the certificates of %s: %w", key(c), err)
	}
	started := d.started(inst)
	for i := len(provisioner.Components) - 1; i >= 0; i-- {
		if sup := started[provisioner.Components[i]]; sup != nil {
			sup.Restart()
		}
	}
	klog.InfoS("Renewed the control plane's certificates", "cluster", key(c), "expiredAt", notAfter)
	return nil
}

// startClients starts kube-controller-manager and kube-scheduler if they are not running
// yet and the control plane is still this driver's to run.
func (d *Driver) startClients(c *v1alpha1.Cluster, inst *instance) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.clusters[key(c)] != inst {
		return
	}
	for _, name := range []string{provisioner.ControllerManager, provisioner.Scheduler} {
		if inst.components[name] == nil {
			inst.components[name] = supervisor.Supervise(inst.specs[name])
		}
	}
}

// started returns the components started so far.
func (d *Driver) started(inst *instance) map[string]*supervisor.Supervised {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(inst.components)
}

// observe probes every component.
func (d *Driver) observe(ctx context.Context, inst *instance, c *v1alpha1.Cluster) *provisioner.Observation {
	obs := &provisioner.Observation{
		Components: map[string]provisioner.Health{},
		Internal:   "https://127.0.0.1:" + strconv.Itoa(inst.ports[portAPIServer]),
		External:   "https://" + d.cfg.ExternalHost + ":" + strconv.Itoa(inst.ports[portAPIServer]),
		Version:    c.Spec.Version,
	}
	probes := map[string]func(context.Context) error{
		provisioner.Etcd: func(ctx context.Context) error {
			return probe(ctx, "https://127.0.0.1:"+strconv.Itoa(inst.ports[portEtcdClient])+"/health", inst.layout.pki("etcd-ca.crt"),
				inst.layout.pki("apiserver-etcd-client.crt"), inst.layout.pki("apiserver-etcd-client.key"))
		},
		provisioner.APIServer: func(ctx context.Context) error {
			return probe(ctx, obs.Internal+"/readyz", inst.layout.pki("ca.crt"), "", "")
		},
		provisioner.ControllerManager: func(ctx context.Context) error {
			return probe(ctx, "https://127.0.0.1:"+strconv.Itoa(inst.ports[portKCM])+"/healthz", inst.layout.pki("ca.crt"), "", "")
		},
		provisioner.Scheduler: func(ctx context.Context) error {
			return probe(ctx, "https://127.0.0.1:"+strconv.Itoa(inst.ports[portScheduler])+"/healthz", inst.layout.pki("ca.crt"), "", "")
		},
	}
	started := d.started(inst)
	for _, name := range provisioner.Components {
		sup := started[name]
		if sup == nil {
			obs.Components[name] = provisioner.Health{Message: "waiting for kube-apiserver to be ready before starting"}
			continue
		}
		h := provisioner.Health{Healthy: true}
		if err := probes[name](ctx); err != nil {
			h = provisioner.Health{Message: err.Error()}
			if restarts, last := sup.Restarts(); restarts > 0 && last != nil {
				h.Message = fmt.Sprintf("%s; restarted %d times, last exit: %v", err, restarts, last)
			}
			if !sup.Running() {
				h.Message = "not running: " + h.Message
			}
		}
		obs.Components[name] = h
	}
	return obs
}

// probe GETs a health endpoint over TLS, trusting caFile and presenting the client
// certificate when given.
func probe(ctx context.Context, url, caFile, certFile, keyFile string) error {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return err
		}
		tlsCfg.Certificates = []tls.Certificate{pair}
	}
	client := &http.Client{Timeout: healthTimeout, Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// Delete stops the control plane and removes the cluster's directory and ports.
func (d *Driver) Delete(_ context.Context, namespace, name string) error {
	k := namespace + "/" + name
	d.mu.Lock()
	if d.closed {
		// Shutdown is stopping the processes; removing their files now would pull the
		// floor from under them. The controller retries after the next start.
		d.mu.Unlock()
		return errors.New("the driver is shutting down")
	}
	inst := d.clusters[k]
	delete(d.clusters, k)
	d.mu.Unlock()
	if inst != nil {
		d.stop(inst)
	}
	l := d.layout(namespace, name)
	ports, err := readPorts(l)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("remove %s: %w", l.dir, err)
	}
	d.mu.Lock()
	d.ports.release(ports)
	d.mu.Unlock()
	// The namespace directory goes too once its last cluster is gone.
	_ = os.Remove(filepath.Dir(l.dir))
	klog.InfoS("Deleted control plane", "cluster", k)
	return nil
}

// Known lists the clusters that have a directory.
func (d *Driver) Known() ([]string, error) {
	dirs, err := filepath.Glob(filepath.Join(d.cfg.DataDir, "clusters", "*", "*"))
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(dirs))
	for _, dir := range dirs {
		keys = append(keys, filepath.Base(filepath.Dir(dir))+"/"+filepath.Base(dir))
	}
	return keys, nil
}

// AdminKubeconfig issues a client certificate for cred from the cluster's client CA.
func (d *Driver) AdminKubeconfig(_ context.Context, c *v1alpha1.Cluster, cred provisioner.Credential) ([]byte, time.Time, error) {
	d.mu.Lock()
	inst := d.clusters[key(c)]
	var crts certs
	var port int
	if inst != nil {
		// Copied under the lock: a rotation replaces the client CA.
		crts, port = *inst.certs, inst.ports[portAPIServer]
	}
	d.mu.Unlock()
	if inst == nil || inst.uid != string(c.UID) {
		return nil, time.Time{}, errors.New("the cluster's control plane is not running yet")
	}
	server := "https://127.0.0.1:" + strconv.Itoa(port)
	if cred.External {
		server = "https://" + d.cfg.ExternalHost + ":" + strconv.Itoa(port)
	}
	data, err := kubeconfig(&crts, server, cred.User, cred.Groups, cred.TTL)
	return data, time.Now().Add(cred.TTL), err
}

// RotateCredentials replaces the client CA, re-issues the components' credentials and
// restarts the components that authenticate clients with it.
func (d *Driver) RotateCredentials(_ context.Context, c *v1alpha1.Cluster) error {
	d.mu.Lock()
	inst := d.clusters[key(c)]
	if inst == nil {
		d.mu.Unlock()
		return errors.New("the cluster's control plane is not running yet")
	}
	client, err := pki.CreateCA(filepath.Join(inst.layout.dir, "pki"), "client-ca")
	if err == nil {
		inst.certs.client = client
		err = writeLeafCerts(inst.layout, inst.certs, inst.ports, d.cfg.ExternalHost)
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("replace the client CA of %s: %w", key(c), err)
	}
	// Clients first, so that kube-apiserver has no watches to drain. The lock is not held
	// meanwhile: other clusters carry on.
	started := d.started(inst)
	for _, name := range []string{provisioner.Scheduler, provisioner.ControllerManager, provisioner.APIServer} {
		if sup := started[name]; sup != nil {
			sup.Restart()
		}
	}
	klog.InfoS("Rotated client CA", "cluster", key(c))
	return nil
}

// Changes delivers the clusters one of whose processes exited.
func (d *Driver) Changes() <-chan string { return d.changes }

// Shutdown stops every control plane, keeping data, ports and PKI for the next start.
func (d *Driver) Shutdown() {
	d.mu.Lock()
	d.closed = true
	insts := d.clusters
	d.clusters = map[string]*instance{}
	d.mu.Unlock()
	start := time.Now()
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Go(func() { d.stop(inst) })
	}
	wg.Wait()
	klog.InfoS("Stopped every control plane", "clusters", len(insts), "took", time.Since(start))
}

// stop stops the components in reverse start order, so that kube-apiserver has no
// watches left to drain and etcd no client left when their turn comes.
func (d *Driver) stop(inst *instance) {
	started := d.started(inst)
	for i := len(provisioner.Components) - 1; i >= 0; i-- {
		if sup := started[provisioner.Components[i]]; sup != nil {
			sup.Stop()
		}
	}
}
