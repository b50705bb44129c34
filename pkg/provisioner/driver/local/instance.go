package local

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
	"github.com/ucloudstack/containerservice/pkg/provisioner/driver/local/kwok"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
)

const (
	// healthTimeout bounds one health probe of one component.
	healthTimeout = 3 * time.Second
	// slotTimeout frees a start slot whose control plane never became ready, so that one
	// broken cluster cannot hold up every other.
	slotTimeout = 2 * time.Minute
)

// prepare makes the cluster's directory, ports, PKI and process specs ready; it runs once
// per instance, with the instance's lock held.
func (d *Driver) prepare(inst *instance, c *v1alpha1.Cluster, bin string) error {
	l := d.layout(c.Namespace, c.Name)
	if err := d.claim(l, c); err != nil {
		return err
	}
	d.mu.Lock()
	ports, err := d.ports.ports(l)
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("ports of %s: %w", key(c), err)
	}
	crts, err := loadCerts(l)
	if err != nil {
		return fmt.Errorf("PKI of %s: %w", key(c), err)
	}
	current, err := leavesCurrent(l, wantLeaves(crts, ports, d.cfg.ExternalHost))
	if err != nil {
		return fmt.Errorf("certificates of %s: %w", key(c), err)
	}
	if !current {
		if err := writeLeafCerts(l, crts, ports, d.cfg.ExternalHost); err != nil {
			return fmt.Errorf("certificates of %s: %w", key(c), err)
		}
		// Processes still running from before hold the earlier certificates in memory:
		// those adopted are restarted in place (startCore).
		inst.restartAdopted = true
	}
	if err := writeIfChanged(l.auditPolicy(), []byte(auditPolicy)); err != nil {
		return fmt.Errorf("audit policy of %s: %w", key(c), err)
	}
	if err := writeIfChanged(l.nodeAgentConfig(), kwok.Config); err != nil {
		return fmt.Errorf("node agent configuration of %s: %w", key(c), err)
	}
	inst.uid, inst.layout, inst.ports = string(c.UID), l, ports
	inst.specs = components(bin, d.cfg.FrontBinary, l, c, ports, d.bindAddress())
	inst.slot, inst.surge = chooseSlot(l)
	if inst.surge != nil {
		d.holdSurge(inst.key)
	}
	k := inst.key
	for name, spec := range inst.specs {
		spec.OnExit = func() {
			select {
			case d.changes <- k:
			default: // a burst of exits: the controller's next poll catches up
			}
		}
		inst.specs[name] = spec
	}
	inst.certs.Store(crts)
	return nil
}

// claim makes the cluster's directory this Cluster's: its own from before, brought back
// from quarantine, or new. A directory another cluster of the same name left is
// quarantined when nothing of it runs and refused while it runs: it may be a tenant's
// whose Cluster the server cannot see (a wrong etcd).
func (d *Driver) claim(l layout, c *v1alpha1.Cluster) error {
	uid := string(c.UID)
	if _, err := os.Stat(l.dir); err == nil {
		owner, err := l.uid()
		if err != nil {
			return err
		}
		if owner == uid {
			return nil
		}
		if owner == "" {
			// Not provably anyone's: the sweep quarantines it (nothing here decides
			// that a directory of unknown owner is garbage).
			return fmt.Errorf("%s holds a control plane of unknown owner (no uid file); it is quarantined within a minute, or move it away", l.dir)
		}
		h := provisioner.Held{Namespace: c.Namespace, Name: c.Name, UID: owner, Running: running(l)}
		if h.Running {
			return fmt.Errorf("the control plane of another cluster named %s (uid %q) runs in %s and no Cluster accounts for it; "+
				"it is left running. Restore its Cluster, or stop its processes (pids in %s) to have it quarantined",
				key(c), owner, l.dir, filepath.Join(l.dir, "run"))
		}
		if _, err := d.moveToQuarantine(l, h, fmt.Sprintf("a new cluster of the same name (uid %s) was created", uid)); err != nil {
			return err
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	if q := d.quarantined(uid); q != "" {
		if err := os.MkdirAll(filepath.Dir(l.dir), 0o700); err != nil {
			return err
		}
		if err := os.Rename(q, l.dir); err != nil {
			return fmt.Errorf("restore %s from quarantine: %w", key(c), err)
		}
		_ = os.Remove(filepath.Join(l.dir, quarantineNote))
		klog.InfoS("Restored a control plane from quarantine: its Cluster is back", "cluster", key(c), "uid", uid, "from", q)
		return nil
	}
	// Made under another name and renamed into place with its uid file, so that no
	// directory ever exists without the UID it belongs to.
	tmp := layout{dir: l.dir + ".new-" + rand.String(6)}
	if err := tmp.create(); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(tmp.uidFile(), []byte(uid), 0o600); err != nil {
		os.RemoveAll(tmp.dir)
		return err
	}
	if err := os.Rename(tmp.dir, l.dir); err != nil {
		os.RemoveAll(tmp.dir)
		return fmt.Errorf("create %s: %w", l.dir, err)
	}
	return nil
}

// running reports whether any recorded process of the layout may run: a record that
// cannot be proven gone counts as running, so that nothing is moved or deleted under a
// live process.
func running(l layout) bool {
	for _, p := range recordNames() {
		if supervisor.Running(l.record(p)) {
			return true
		}
	}
	return false
}

// startCore starts (or adopts) etcd, the front and kube-apiserver, and adopts
// kube-controller-manager and kube-scheduler if they still run. A control plane that must
// really start waits for one of the bounded start slots; the returned message says so.
func (d *Driver) startCore(inst *instance) string {
	serving := slotComponent(inst.slot)
	// Starting etcd or kube-apiserver is what takes a start slot: a kube-apiserver that
	// runs, whatever its command line, is adopted as it runs (below).
	cold := inst.components[provisioner.Etcd] == nil && !matches(inst.specs[provisioner.Etcd]) ||
		inst.components[serving] == nil && !supervisor.Alive(inst.specs[serving].StateFile)
	if cold {
		if n, ok := d.takeSlot(inst.key); !ok {
			return fmt.Sprintf("waiting to start: %d control planes are starting, at most %d at once (--max-concurrent-starts)", n, d.cfg.MaxConcurrentStarts)
		}
	}
	// A cluster made before the front: its kube-apiserver holds the published port, which
	// the front takes. This start is the one moment its clients are refused.
	if legacy := inst.layout.record(legacyAPIServer); supervisor.Alive(legacy) {
		klog.InfoS("Moving the cluster's kube-apiserver behind its front", "cluster", inst.key)
		if err := supervisor.StopRecorded(legacy, apiserverStopGrace); err != nil {
			inst.startErr[frontComponent] = err
			return ""
		}
	}
	// A kube-apiserver that runs an earlier command line (an upgrade of the server) is
	// adopted as it runs, then replaced beside itself (when a surge may start) rather than
	// restarted in place: it serves, supervised, until its replacement is ready.
	if spec := inst.specs[serving]; inst.components[serving] == nil && supervisor.Alive(spec.StateFile) && !matches(spec) {
		if r, err := supervisor.ReadRecord(spec.StateFile); err == nil {
			asIs := spec
			asIs.Binary, asIs.Args, asIs.Env = r.Binary, r.Args, r.Env
			if sup, _, err := supervisor.Resume(asIs); err == nil {
				inst.components[serving] = sup
				inst.surgeWanted, inst.rollingOut = true, true
			}
		}
	}
	// The kube-apiserver a surge cut short by a restart replaces serves until the end:
	// supervised again if it runs the command it was started with (restarted if it dies).
	if s := inst.surge; s != nil {
		if old := slotComponent(s.from); inst.components[old] == nil && matches(inst.specs[old]) {
			if sup, _, err := supervisor.Resume(inst.specs[old]); err == nil {
				inst.components[old] = sup
			}
		}
	}
	if err := d.writeFront(inst); err != nil {
		inst.startErr[frontComponent] = err
		return ""
	}
	for _, name := range []string{provisioner.Etcd, frontComponent, slotComponent(inst.slot), provisioner.ControllerManager, provisioner.Scheduler} {
		if inst.components[name] != nil {
			continue
		}
		isCore := name == provisioner.Etcd || name == frontComponent || name == slotComponent(inst.slot)
		if !isCore && !matches(inst.specs[name]) {
			continue // started by startClients once kube-apiserver is ready
		}
		d.resume(inst, name)
	}
	inst.restartAdopted = false
	return ""
}

// matches reports whether the component's recorded process runs exactly its spec.
func matches(spec supervisor.Component) bool {
	r, err := supervisor.ReadRecord(spec.StateFile)
	return err == nil && r.Same(spec.Binary, spec.Args, spec.Env) && supervisor.Alive(spec.StateFile)
}

func (d *Driver) resume(inst *instance, name string) {
	sup, outcome, err := supervisor.Resume(inst.specs[name])
	if err != nil {
		// Nothing is started beside a process that may still run; observe says why.
		inst.startErr[name] = err
		klog.ErrorS(err, "Cannot adopt or start a component", "cluster", inst.key, "component", name)
		return
	}
	delete(inst.startErr, name)
	inst.components[name] = sup
	switch {
	case outcome == supervisor.Reconfigured:
		inst.rollingOut = true
	case outcome == supervisor.Adopted && inst.restartAdopted && name == slotComponent(inst.slot):
		// It runs with certificates issued before this start: replaced beside itself.
		d.replaceAPIServer(inst)
	case outcome == supervisor.Adopted && inst.restartAdopted && name != frontComponent:
		// It runs with certificates issued before this start: restarted in place. (The
		// front holds no certificate of its own.)
		sup.Restart()
		inst.rollingOut = true
	}
	klog.V(2).InfoS("Control plane component", "cluster", inst.key, "component", name, "outcome", outcome)
}

// startClients starts kube-controller-manager and kube-scheduler once kube-apiserver is
// ready: started together, they would exit and be restarted a few times.
func (d *Driver) startClients(inst *instance) {
	for _, name := range []string{provisioner.ControllerManager, provisioner.Scheduler} {
		if inst.components[name] == nil {
			d.resume(inst, name)
		}
	}
}

// takeSlot gives the cluster one of the start slots, or reports how many are taken.
func (d *Driver) takeSlot(k string) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for other, since := range d.starting {
		if time.Since(since) > slotTimeout {
			delete(d.starting, other)
		}
	}
	if _, ok := d.starting[k]; ok {
		return len(d.starting), true
	}
	if len(d.starting) >= d.cfg.MaxConcurrentStarts {
		return len(d.starting), false
	}
	d.starting[k] = time.Now()
	return len(d.starting), true
}

func (d *Driver) releaseSlot(k string) {
	d.mu.Lock()
	delete(d.starting, k)
	d.mu.Unlock()
}

func (d *Driver) endpoints(inst *instance, c *v1alpha1.Cluster) *provisioner.Observation {
	port := strconv.Itoa(inst.ports[portAPIServer])
	return &provisioner.Observation{
		Components: map[string]provisioner.Health{},
		Internal:   "https://127.0.0.1:" + port,
		External:   "https://" + d.cfg.ExternalHost + ":" + port,
		Version:    c.Spec.Version,
	}
}

// waitingObservation reports a control plane waiting for a start slot.
func (d *Driver) waitingObservation(inst *instance, c *v1alpha1.Cluster, msg string) *provisioner.Observation {
	obs := d.endpoints(inst, c)
	for _, name := range provisioner.Components {
		obs.Components[name] = provisioner.Health{Message: msg}
	}
	obs.Updating = inst.rollingOut
	return obs
}

// observe probes every component, all at once.
func (d *Driver) observe(ctx context.Context, inst *instance, c *v1alpha1.Cluster) *provisioner.Observation {
	obs := d.endpoints(inst, c)
	l := inst.layout
	local := func(port string) string { return "https://127.0.0.1:" + strconv.Itoa(inst.ports[port]) }
	probes := map[string]func(context.Context) error{
		provisioner.Etcd: func(ctx context.Context) error {
			return probe(ctx, local(portEtcdClient)+"/health", l.pki("etcd-ca.crt"), l.pki("apiserver-etcd-client.crt"), l.pki("apiserver-etcd-client.key"))
		},
		provisioner.APIServer: func(ctx context.Context) error {
			return probe(ctx, obs.Internal+"/readyz", l.pki("ca.crt"), "", "")
		},
		provisioner.ControllerManager: func(ctx context.Context) error {
			return probe(ctx, local(portKCM)+"/healthz", l.pki("ca.crt"), "", "")
		},
		provisioner.Scheduler: func(ctx context.Context) error {
			return probe(ctx, local(portScheduler)+"/healthz", l.pki("ca.crt"), "", "")
		},
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range provisioner.Components {
		key := name
		if name == provisioner.APIServer {
			key = slotComponent(inst.slot)
		}
		sup := inst.components[key]
		if sup == nil {
			msg := "waiting for kube-apiserver to be ready before starting"
			if err := inst.startErr[key]; err != nil {
				msg = "cannot adopt or start: " + err.Error()
			}
			if name == provisioner.APIServer {
				msg += frontTrouble(inst)
			}
			mu.Lock()
			obs.Components[name] = provisioner.Health{Message: msg}
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			h := provisioner.Health{Healthy: true}
			if err := probes[name](ctx); err != nil {
				h = provisioner.Health{Message: err.Error()}
				if restarts, last := sup.Restarts(); restarts > 0 && last != nil {
					h.Message = fmt.Sprintf("%s; restarted %d times, last exit: %v", err, restarts, last)
				}
				if !sup.Running() {
					h.Message = "not running: " + h.Message
				}
				if name == provisioner.APIServer {
					h.Message += frontTrouble(inst)
				}
			}
			mu.Lock()
			obs.Components[name] = h
			mu.Unlock()
		})
	}
	wg.Wait()
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

// writeIfChanged writes the file (atomically) unless it already holds data.
func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}
