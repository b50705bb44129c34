package local

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"

	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
	"github.com/ucloudstack/containerservice/pkg/provisioner/front"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
)

// A cluster's published port belongs to its front (containerservice-front), which forwards
// each connection to a kube-apiserver that answers /readyz. kube-apiserver runs in one of
// two slots, each with its own loopback port. Replacing it (new certificates, a new
// configuration) is a surge: the new process starts in the spare slot beside the old one,
// the front adds it once it is ready, then the old one is drained (no new connection) and
// stopped gracefully (its clients are told to reconnect, and reconnect to the new one).
// No connection is refused at any point.

// surgeStuckAfter is how long a replacement may take to become ready before the driver
// says so in its log; the old kube-apiserver serves meanwhile.
const surgeStuckAfter = 2 * time.Minute

// frontStatusFresh is how old the front's status may be and still be believed (it writes
// it every second).
const frontStatusFresh = 5 * time.Second

// surge is a kube-apiserver being replaced.
type surge struct {
	// from is the slot being replaced; the instance's slot is the one replacing it.
	from int
	// since is when the replacement started.
	since time.Time
	// draining is set once the front was told to send nothing new to from.
	draining bool
	// again asks for another replacement once this one is over: something changed again
	// after the replacement had started serving.
	again bool
	// stuck is set once the slow replacement was reported.
	stuck bool
}

// frontListen is where a cluster's front accepts: the published port on bindAddress.
func frontListen(bindAddress string, ports map[string]int) string {
	return net.JoinHostPort(bindAddress, strconv.Itoa(ports[portAPIServer]))
}

// slotBackend is the front's backend for a slot.
func slotBackend(inst *instance, slot int) front.Backend {
	return front.Backend{Name: processNames[slotComponent(slot)], Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(inst.ports[slotPorts[slot]]))}
}

// writeFront writes the front's config for where the instance stands: the serving slot,
// and during a surge the slot being replaced (draining once the new one is ready). The
// front reads the file again within a second of a change. Each change counts one more
// generation, which the front echoes in its status.
func (d *Driver) writeFront(inst *instance) error {
	backends := []front.Backend{slotBackend(inst, inst.slot)}
	if s := inst.surge; s != nil {
		old := slotBackend(inst, s.from)
		old.Draining = s.draining
		backends = append(backends, old)
	}
	cfg := front.Config{
		Listen:          []string{frontListen(d.bindAddress(), inst.ports)},
		CAFile:          inst.layout.pki("ca.crt"),
		Backends:        backends,
		ShutdownTimeout: front.Duration(frontShutdown),
	}
	// The generation goes on from the file's: a restarted server never writes one the
	// front has seen for another config.
	if prev, err := front.LoadConfig(inst.layout.frontConfig()); err == nil {
		inst.frontGeneration = max(inst.frontGeneration, prev.Generation)
		cfg.Generation = prev.Generation
		if equalJSON(prev, cfg) {
			return nil
		}
	}
	inst.frontGeneration++
	cfg.Generation = inst.frontGeneration
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(inst.layout.frontConfig(), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the front's config of %s: %w", inst.key, err)
	}
	return nil
}

func equalJSON(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// frontBackend returns what the front says of a backend, when its status is fresh and of
// the config last written: listed is false when it does not list the backend (or no
// longer: removed), current is false when the status cannot be believed yet.
func frontBackend(inst *instance, name string) (b front.BackendStatus, listed, current bool) {
	st, err := front.ReadStatusFile(inst.layout.frontStatus())
	sup := inst.components[frontComponent]
	if err != nil || sup == nil || st.PID != sup.Pid() || time.Since(st.Time) > frontStatusFresh ||
		st.ConfigError != "" || st.Generation != inst.frontGeneration {
		return b, false, false
	}
	for _, b := range st.Backends {
		if b.Name == name && !b.Removed {
			return b, true, true
		}
	}
	return b, false, true
}

// serving reports whether the front finds the slot's kube-apiserver ready since the
// surge's replacement started: its last probe, made after that, succeeded. A health the
// front had of an earlier process at the same address is never taken for it.
func serving(inst *instance, slot int, since time.Time) bool {
	b, listed, current := frontBackend(inst, processNames[slotComponent(slot)])
	return listed && current && b.Healthy && !b.Draining && b.LastProbeError == "" && b.LastProbe.After(since)
}

// replaceAPIServer has kube-apiserver restarted without refusing a connection, to read
// what changed on disk (certificates) or run a new command line.
func (d *Driver) replaceAPIServer(inst *instance) {
	inst.rollingOut = true
	if s := inst.surge; s != nil {
		if s.draining {
			s.again = true
			return
		}
		// The replacement does not serve yet: restarted in place, it reads what changed.
		if sup := inst.components[slotComponent(inst.slot)]; sup != nil {
			sup.Restart()
		}
		s.since = time.Now()
		return
	}
	if !d.takeSurge(inst.key) {
		inst.surgeWanted = true // Ensure starts it once another surge ends
		return
	}
	inst.surge = &surge{from: inst.slot, since: time.Now()}
	inst.slot = 1 - inst.slot
	d.startSlot(inst)
}

// takeSurge lets the cluster replace its kube-apiserver, unless MaxConcurrentStarts
// replacements run already.
func (d *Driver) takeSurge(k string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.surging[k] && len(d.surging) >= d.cfg.MaxConcurrentStarts {
		return false
	}
	d.surging[k] = true
	return true
}

// holdSurge counts a replacement found under way (a restart cut it short), whatever the
// bound: it runs already.
func (d *Driver) holdSurge(k string) {
	d.mu.Lock()
	d.surging[k] = true
	d.mu.Unlock()
}

func (d *Driver) endSurge(k string) {
	d.mu.Lock()
	delete(d.surging, k)
	d.mu.Unlock()
}

// startSlot starts kube-apiserver in the serving slot and adds it to the front.
func (d *Driver) startSlot(inst *instance) {
	if err := d.writeFront(inst); err != nil {
		klog.ErrorS(err, "Cannot configure the front", "cluster", inst.key)
	}
	if inst.components[slotComponent(inst.slot)] == nil {
		d.resume(inst, slotComponent(inst.slot))
	}
}

// progressSurge moves a surge on when it can: once the front finds the new kube-apiserver
// ready, the old one is drained; once the front sends it nothing new, it is stopped and
// leaves the front's config.
func (d *Driver) progressSurge(inst *instance) {
	s := inst.surge
	if s == nil {
		return
	}
	if !s.draining {
		if !serving(inst, inst.slot, s.since) {
			if !s.stuck && time.Since(s.since) > surgeStuckAfter {
				s.stuck = true
				klog.ErrorS(nil, "The replacement kube-apiserver is not ready; the one it replaces keeps serving", "cluster", inst.key,
					"slot", inst.slot, "since", s.since, "log", inst.layout.logs())
			}
			return
		}
		s.draining = true
		if err := d.writeFront(inst); err != nil {
			klog.ErrorS(err, "Cannot configure the front", "cluster", inst.key)
		}
		return
	}
	old := slotComponent(s.from)
	b, listed, current := frontBackend(inst, processNames[old])
	if !current || !listed || !b.Draining {
		return // the front has not taken the drain yet
	}
	// The replacement must still serve when the old one stops: one that failed since is
	// no replacement, and the old one goes back into rotation.
	if !serving(inst, inst.slot, s.since) {
		klog.InfoS("The replacement kube-apiserver stopped serving during the drain; the one it replaces serves again", "cluster", inst.key, "slot", inst.slot)
		s.draining = false
		if err := d.writeFront(inst); err != nil {
			klog.ErrorS(err, "Cannot configure the front", "cluster", inst.key)
		}
		return
	}
	// Stopped gracefully: the requests it serves complete, and its clients are told to
	// go away, which they do through the front, to the new one.
	if sup := inst.components[old]; sup != nil {
		sup.Stop()
		delete(inst.components, old)
	} else if err := supervisor.StopRecorded(inst.layout.record(processNames[old]), stopGrace(old)); err != nil {
		klog.ErrorS(err, "Cannot stop the replaced kube-apiserver", "cluster", inst.key, "slot", s.from)
		return
	}
	inst.surge = nil
	d.endSurge(inst.key)
	if err := d.writeFront(inst); err != nil {
		klog.ErrorS(err, "Cannot configure the front", "cluster", inst.key)
	}
	klog.InfoS("Replaced kube-apiserver", "cluster", inst.key, "slot", inst.slot, "took", time.Since(s.since).Round(time.Millisecond))
	if s.again {
		d.replaceAPIServer(inst)
	}
}

// chooseSlot picks the serving slot from what runs: the one alive, or, when both are (a
// surge cut short by a restart of the server), the newer, the older being replaced. When
// none runs, slot 0.
func chooseSlot(l layout) (slot int, replacing *surge) {
	var alive []int
	var started [slots]uint64
	for i := range slots {
		file := l.record(processNames[slotComponent(i)])
		if r, err := supervisor.ReadRecord(file); err == nil && supervisor.Alive(file) {
			alive, started[i] = append(alive, i), r.StartTime
		}
	}
	switch len(alive) {
	case 0:
		return 0, nil
	case 1:
		return alive[0], nil
	}
	newer := 0
	if started[1] > started[0] {
		newer = 1
	}
	return newer, &surge{from: 1 - newer, since: time.Now()}
}

// frontTrouble says what is wrong with the cluster's front, for the message of the
// APIServer's health (which is probed through the front), or "".
func frontTrouble(inst *instance) string {
	sup := inst.components[frontComponent]
	if sup == nil {
		if err := inst.startErr[frontComponent]; err != nil {
			return "; the front cannot start: " + err.Error()
		}
		return ""
	}
	restarts, last := sup.Restarts()
	switch {
	case !sup.Running() && last != nil:
		return fmt.Sprintf("; the front is not running, last exit: %v", last)
	case restarts > 0 && last != nil:
		return fmt.Sprintf("; the front restarted %d times, last exit: %v", restarts, last)
	}
	return ""
}
