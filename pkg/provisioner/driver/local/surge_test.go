package local

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
	"github.com/ucloudstack/containerservice/pkg/provisioner/front"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
)

// frontConfigOf reads the front's config the driver wrote.
func frontConfigOf(t *testing.T, l layout) front.Config {
	t.Helper()
	cfg, err := front.LoadConfig(l.frontConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// backendsOf names the config's backends, a draining one with a trailing "~".
func backendsOf(cfg front.Config) []string {
	var out []string
	for _, b := range cfg.Backends {
		name := b.Name
		if b.Draining {
			name += "~"
		}
		out = append(out, name)
	}
	return out
}

// reportFront writes the front's status as the front would (the fake front writes none),
// of the config last written, probed just now: each named backend listed, healthy,
// draining when its name ends in "~", unhealthy when it ends in "!".
func reportFront(t *testing.T, inst *instance, backends ...string) {
	t.Helper()
	writeStatus(t, inst, inst.frontGeneration, time.Now(), backends...)
}

func writeStatus(t *testing.T, inst *instance, generation int64, probed time.Time, backends ...string) {
	t.Helper()
	st := front.StatusFile{Time: time.Now(), PID: inst.components[frontComponent].Pid()}
	st.Generation = generation
	for _, b := range backends {
		s := front.BackendStatus{Name: strings.TrimRight(b, "~!"), Healthy: !strings.HasSuffix(b, "!"), Draining: strings.HasSuffix(b, "~"), LastProbe: probed}
		if !s.Healthy {
			s.LastProbeError = "probe: connection refused"
		}
		st.Backends = append(st.Backends, s)
	}
	data, _ := json.Marshal(st)
	if err := atomicfile.WriteFile(inst.layout.frontStatus(), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func instanceOf(d *Driver, k string) *instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.clusters[k]
}

func ensure(t *testing.T, d *Driver) {
	t.Helper()
	if _, err := d.Ensure(context.Background(), cluster("prod", "u1")); err != nil {
		t.Fatal(err)
	}
}

// A kube-apiserver replaced (renewal, rotation) starts in the other slot beside the one
// serving, which keeps serving until the front finds the new one healthy, is drained, and
// stops only once the front sends it nothing new. A second replacement asked for meanwhile
// follows.
func TestKubeAPIServerIsReplacedBesideItself(t *testing.T) {
	d, cfg, c, l, before := firstDriver(t)
	// Cleanups run last first: the driver stops supervising, then the processes stop.
	t.Cleanup(func() { StopControlPlanes(cfg.DataDir) })
	t.Cleanup(d.Shutdown)
	inst := instanceOf(d, key(c))
	if got := backendsOf(frontConfigOf(t, l)); !slices.Equal(got, []string{"kube-apiserver-0"}) {
		t.Fatalf("front backends %v, want kube-apiserver-0", got)
	}
	if cfg := frontConfigOf(t, l); cfg.Listen[0] != "127.0.0.1:"+strconv.Itoa(inst.ports[portAPIServer]) {
		t.Errorf("the front listens on %v, want the published port %d", cfg.Listen, inst.ports[portAPIServer])
	}

	inst.mu.Lock()
	d.restartStarted(inst)
	inst.mu.Unlock()
	now := waitPids(t, l, 4)
	if now["kube-apiserver-0"] != before["kube-apiserver-0"] || now["kube-apiserver-1"] == 0 || now["containerservice-front"] != before["containerservice-front"] {
		t.Fatalf("processes %v after a renewal (before %v): want the old kube-apiserver and the front kept, a new one in slot 1", now, before)
	}
	if got := backendsOf(frontConfigOf(t, l)); !slices.Equal(got, []string{"kube-apiserver-1", "kube-apiserver-0"}) {
		t.Errorf("front backends %v during the surge, want both", got)
	}

	// Not healthy yet in the front's eyes, or healthy in a status that cannot be believed
	// (of an earlier config, probed before the replacement started): nothing moves, and
	// the cluster is Updating.
	started := time.Now()
	for name, report := range map[string]func(){
		"not listed": func() { reportFront(t, inst, "kube-apiserver-0") },
		"unhealthy":  func() { reportFront(t, inst, "kube-apiserver-0", "kube-apiserver-1!") },
		"an earlier config": func() {
			writeStatus(t, inst, inst.frontGeneration-1, time.Now(), "kube-apiserver-0", "kube-apiserver-1")
		},
		"probed before it": func() {
			writeStatus(t, inst, inst.frontGeneration, started.Add(-time.Second), "kube-apiserver-0", "kube-apiserver-1")
		},
	} {
		report()
		ensure(t, d)
		if got := backendsOf(frontConfigOf(t, l)); !slices.Equal(got, []string{"kube-apiserver-1", "kube-apiserver-0"}) {
			t.Errorf("%s: front backends %v, want both serving", name, got)
		}
	}
	reportFront(t, inst, "kube-apiserver-0")
	obs, err := d.Ensure(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if !obs.Updating {
		t.Error("a cluster whose kube-apiserver is being replaced is not Updating")
	}
	if got := backendsOf(frontConfigOf(t, l)); !slices.Equal(got, []string{"kube-apiserver-1", "kube-apiserver-0"}) {
		t.Errorf("front backends %v before the new one is healthy, want both serving", got)
	}

	// Healthy: the old one drains, and runs until the front has taken the drain.
	reportFront(t, inst, "kube-apiserver-0", "kube-apiserver-1")
	ensure(t, d)
	if got := backendsOf(frontConfigOf(t, l)); !slices.Equal(got, []string{"kube-apiserver-1", "kube-apiserver-0~"}) {
		t.Errorf("front backends %v once the new one is healthy, want the old one draining", got)
	}
	ensure(t, d)
	if syscall.Kill(before["kube-apiserver-0"], 0) != nil {
		t.Error("the old kube-apiserver stopped before the front drained it")
	}
	// The replacement fails during the drain: the old one is not stopped, and serves again.
	reportFront(t, inst, "kube-apiserver-0~", "kube-apiserver-1!")
	ensure(t, d)
	if syscall.Kill(before["kube-apiserver-0"], 0) != nil {
		t.Fatal("the old kube-apiserver was stopped though its replacement had failed")
	}
	if got := backendsOf(frontConfigOf(t, l)); !slices.Equal(got, []string{"kube-apiserver-1", "kube-apiserver-0"}) {
		t.Errorf("front backends %v after the replacement failed, want the old one back in rotation", got)
	}
	reportFront(t, inst, "kube-apiserver-0", "kube-apiserver-1")
	ensure(t, d)
	if got := backendsOf(frontConfigOf(t, l)); !slices.Equal(got, []string{"kube-apiserver-1", "kube-apiserver-0~"}) {
		t.Errorf("front backends %v once the replacement serves again, want the old one draining", got)
	}
	// Meanwhile another change: it is replaced again once this surge is over.
	inst.mu.Lock()
	d.replaceAPIServer(inst)
	inst.mu.Unlock()

	reportFront(t, inst, "kube-apiserver-0~", "kube-apiserver-1")
	ensure(t, d)
	if syscall.Kill(before["kube-apiserver-0"], 0) == nil && !zombie(before["kube-apiserver-0"]) {
		t.Error("the drained kube-apiserver still runs")
	}
	second := waitPids(t, l, 4)
	if second["kube-apiserver-1"] != now["kube-apiserver-1"] || second["kube-apiserver-0"] == 0 || second["kube-apiserver-0"] == before["kube-apiserver-0"] {
		t.Errorf("processes %v: want slot 1 serving and the second replacement started in slot 0", second)
	}
	if got := backendsOf(frontConfigOf(t, l)); !slices.Equal(got, []string{"kube-apiserver-0", "kube-apiserver-1"}) {
		t.Errorf("front backends %v at the second surge, want the new slot 0 beside slot 1", got)
	}
}

// A server killed mid-surge finds both kube-apiservers running: the newer serves, the
// older is supervised again until it is drained and stopped, as the surge would have done.
func TestRestartMidSurgeKeepsTheNewerKubeAPIServer(t *testing.T) {
	first, cfg, c, l, _ := firstDriver(t)
	inst := instanceOf(first, key(c))
	inst.mu.Lock()
	first.replaceAPIServer(inst)
	inst.mu.Unlock()
	both := waitPids(t, l, 4)
	first.Shutdown()

	t.Cleanup(func() { StopControlPlanes(cfg.DataDir) })
	second := newDriver(t, cfg)
	if _, err := second.Ensure(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	inst = instanceOf(second, key(c))
	if inst.slot != 1 || inst.surge == nil || inst.surge.from != 0 {
		t.Fatalf("after the restart: slot %d, surge %+v; want slot 1 serving, slot 0 being replaced", inst.slot, inst.surge)
	}
	if obs, err := second.Ensure(context.Background(), c); err != nil || !obs.Updating {
		t.Errorf("a cluster finishing a surge after a restart: Updating %v (%v), want true", obs != nil && obs.Updating, err)
	}
	if sup := inst.components[slotComponent(0)]; sup == nil || sup.Pid() != both["kube-apiserver-0"] {
		t.Error("the older kube-apiserver, serving until the end of the surge, is not supervised again")
	}
	if got := backendsOf(frontConfigOf(t, l)); !slices.Equal(got, []string{"kube-apiserver-1", "kube-apiserver-0"}) {
		t.Errorf("front backends %v, want both", got)
	}
	reportFront(t, inst, "kube-apiserver-0", "kube-apiserver-1")
	ensure(t, second)
	reportFront(t, inst, "kube-apiserver-0~", "kube-apiserver-1")
	ensure(t, second)
	if pid := both["kube-apiserver-0"]; syscall.Kill(pid, 0) == nil && !zombie(pid) {
		t.Error("the older kube-apiserver still runs after its drain")
	}
	if got := pids(t, l)["kube-apiserver-1"]; got != both["kube-apiserver-1"] {
		t.Errorf("the newer kube-apiserver has pid %d, want %d kept", got, both["kube-apiserver-1"])
	}
}

// A cluster made before the front had its kube-apiserver on the published port: at its
// next start that one stops, the front takes the port, and kube-apiserver runs in slot 0.
func TestClustersBeforeTheFrontGetIt(t *testing.T) {
	cfg := fakeConfig(t, t.TempDir())
	t.Cleanup(func() { StopControlPlanes(cfg.DataDir) })
	d := newDriver(t, cfg)
	c := cluster("prod", "u1")
	inst := prepared(t, d, c)
	l := inst.layout
	published := inst.ports[portAPIServer]
	legacy := supervisor.Component{Name: legacyAPIServer, Binary: filepath.Join(cfg.BinDirs["v1.37.1"], "kube-apiserver"),
		Args: []string{"--secure-port=" + strconv.Itoa(published)}, LogDir: l.logs(), StateFile: l.record(legacyAPIServer)}
	sup, _, err := supervisor.Resume(legacy)
	if err != nil {
		t.Fatal(err)
	}
	old := waitPids(t, l, 1)[legacyAPIServer]
	sup.Detach()
	d.Shutdown()

	d = newDriver(t, cfg)
	if _, err := d.Ensure(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(old, 0) == nil && !zombie(old) {
		t.Error("the kube-apiserver on the published port still runs")
	}
	now := waitPids(t, l, 3)
	if now["containerservice-front"] == 0 || now["kube-apiserver-0"] == 0 {
		t.Errorf("processes %v, want the front and kube-apiserver in slot 0", now)
	}
	ports, err := readPorts(l)
	if err != nil {
		t.Fatal(err)
	}
	if ports[portAPIServer] != published || ports[slotPorts[0]] == 0 || ports[slotPorts[1]] == 0 {
		t.Errorf("ports %v: want the published port %d kept and two slot ports", ports, published)
	}
	if cfg := frontConfigOf(t, l); cfg.Listen[0] != "127.0.0.1:"+strconv.Itoa(published) {
		t.Errorf("the front listens on %v, want the published port", cfg.Listen)
	}
}

// Replacements are bounded like starts: with one at a time, a second cluster's waits
// (Updating meanwhile, no second kube-apiserver) and starts once the first is over.
func TestReplacementsAreBounded(t *testing.T) {
	cfg := fakeConfig(t, t.TempDir())
	cfg.MaxConcurrentStarts = 1
	t.Cleanup(func() { StopControlPlanes(cfg.DataDir) })
	d := newDriver(t, cfg)
	a, b := cluster("a", "ua"), cluster("b", "ub")
	for _, c := range []*v1alpha1.Cluster{a, b} {
		if _, err := d.Ensure(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		// Each start slot is released once kube-apiserver answers: the fakes do not.
		d.releaseSlot(key(c))
		if _, err := d.Ensure(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	ia, ib := instanceOf(d, key(a)), instanceOf(d, key(b))
	for _, inst := range []*instance{ia, ib} {
		inst.mu.Lock()
		d.replaceAPIServer(inst)
		inst.mu.Unlock()
	}
	if ia.surge == nil || ib.surge != nil || !ib.surgeWanted {
		t.Fatalf("surges a %+v, b %+v (wanted %v): want a's alone under way, b's waiting", ia.surge, ib.surge, ib.surgeWanted)
	}
	obs, err := d.Ensure(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !obs.Updating || ib.surge != nil || pids(t, ib.layout)["kube-apiserver-1"] != 0 {
		t.Errorf("b while a's surge runs: Updating %v, surge %+v, processes %v; want Updating and no second kube-apiserver", obs.Updating, ib.surge, pids(t, ib.layout))
	}

	waitPids(t, ia.layout, 4)
	reportFront(t, ia, "kube-apiserver-0", "kube-apiserver-1")
	if _, err := d.Ensure(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	reportFront(t, ia, "kube-apiserver-0~", "kube-apiserver-1")
	if _, err := d.Ensure(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if ia.surge != nil {
		t.Fatalf("a's surge is not over: %+v", ia.surge)
	}
	if _, err := d.Ensure(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if ib.surge == nil || waitPids(t, ib.layout, 4)["kube-apiserver-1"] == 0 {
		t.Errorf("b's replacement did not start once a's was over: surge %+v, processes %v", ib.surge, pids(t, ib.layout))
	}
}

// A kube-apiserver running an earlier command line (an upgrade of the server) is adopted
// as it runs, supervised, and replaced beside itself: never restarted in place.
func TestAnEarlierCommandLineIsReplacedBesideItself(t *testing.T) {
	cfg := fakeConfig(t, t.TempDir())
	t.Cleanup(func() { StopControlPlanes(cfg.DataDir) })
	d := newDriver(t, cfg)
	c := cluster("prod", "u1")
	inst := prepared(t, d, c)
	earlier := inst.specs[slotComponent(0)]
	earlier.Binary = filepath.Join(cfg.BinDirs["v1.37.1"], "kube-apiserver") // prepared names no binaries
	earlier.Args = append(slices.Clone(earlier.Args), "--a-flag-of-an-earlier-release")
	sup, _, err := supervisor.Resume(earlier)
	if err != nil {
		t.Fatal(err)
	}
	old := waitPids(t, inst.layout, 1)["kube-apiserver-0"]
	sup.Detach()
	d.Shutdown()

	d = newDriver(t, cfg)
	obs, err := d.Ensure(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	inst = instanceOf(d, key(c))
	if sup := inst.components[slotComponent(0)]; sup == nil || sup.Pid() != old {
		t.Errorf("the kube-apiserver of the earlier command line (pid %d) is not adopted as it runs", old)
	}
	if inst.surge == nil || inst.slot != 1 || !obs.Updating {
		t.Errorf("slot %d, surge %+v, Updating %v: want its replacement under way in slot 1", inst.slot, inst.surge, obs.Updating)
	}
	if now := waitPids(t, inst.layout, 4); now["kube-apiserver-0"] != old || now["kube-apiserver-1"] == 0 {
		t.Errorf("processes %v: want the earlier one (pid %d) serving and its replacement beside it", now, old)
	}
}
