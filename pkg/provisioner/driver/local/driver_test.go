package local

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/driver/local/kwok"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
)

// fakeComponentEnv makes this test binary, started as a control plane component, wait
// for a signal instead of running tests: a real process the driver starts, records,
// detaches from and adopts, without the kube binaries.
const fakeComponentEnv = "CONTAINERSERVICE_FAKE_COMPONENT"

func TestMain(m *testing.M) {
	if os.Getenv(fakeComponentEnv) != "" {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		select {
		case <-ch:
		case <-time.After(5 * time.Minute): // never outlive a killed test run for long
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeBinaries returns a directory whose etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler (and kwok) are this test binary.
func fakeBinaries(t *testing.T) string {
	t.Helper()
	t.Setenv(fakeComponentEnv, "1")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "containerservice-front"} {
		if err := os.Symlink(self, filepath.Join(dir, b)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// someFront is a file where the driver looks for containerservice-front, for tests that
// start no process.
func someFront(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "containerservice-front")
	if err := os.WriteFile(p, nil, 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeConfig is a driver's configuration on data whose binaries, the front's included,
// are fakeBinaries.
func fakeConfig(t *testing.T, data string) Config {
	t.Helper()
	bin := fakeBinaries(t)
	return Config{DataDir: data, BinDirs: map[string]string{"v1.37.1": bin}, FrontBinary: filepath.Join(bin, "containerservice-front")}
}

func newDriver(t *testing.T, cfg Config) *Driver {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Shutdown)
	return d
}

// firstDriver is the first of two drivers on one data directory (a server before its
// restart): it runs the control plane of acme/prod (UID u1) and is left to the test to
// shut down; cfg starts the second. running are the control plane's processes.
func firstDriver(t *testing.T) (first *Driver, cfg Config, c *v1alpha1.Cluster, l layout, running map[string]int) {
	t.Helper()
	cfg = fakeConfig(t, t.TempDir())
	c = cluster("prod", "u1")
	first, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Ensure(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	l = first.layout("acme", "prod")
	return first, cfg, c, l, waitPids(t, l, 3)
}

func cluster(name, uid string) *v1alpha1.Cluster {
	return &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "acme", UID: types.UID(uid)},
		Spec: v1alpha1.ClusterSpec{Version: "v1.37.1", Network: v1alpha1.ClusterNetwork{PodCIDRs: []string{"10.244.0.0/16"}, ServiceCIDRs: []string{"10.96.0.0/12"}}}}
}

// waitPids waits until n recorded processes of the layout run, and returns them.
func waitPids(t *testing.T, l layout, n int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := pids(t, l)
		if len(p) == n || time.Now().After(deadline) {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pids(t *testing.T, l layout) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range recordNames() {
		if r, err := supervisor.ReadRecord(l.record(p)); err == nil && supervisor.Alive(l.record(p)) {
			out[p] = r.Pid
		}
	}
	return out
}

func TestEnsureExplainsMissingBinariesAndVersions(t *testing.T) {
	bin := t.TempDir()
	d := newDriver(t, Config{FrontBinary: someFront(t), DataDir: t.TempDir(), BinDirs: map[string]string{"v1.37.1": bin}})
	c := cluster("prod", "u1")

	_, err := d.Ensure(context.Background(), c)
	var permanent *provisioner.PermanentError
	if !errors.As(err, &permanent) || !strings.Contains(err.Error(), "etcd for Kubernetes v1.37.1 is missing") || !strings.Contains(err.Error(), "hack/kube-binaries.sh") {
		t.Errorf("missing binaries: %v", err)
	}

	c.Spec.Version = "v1.30.0"
	_, err = d.Ensure(context.Background(), c)
	if !errors.As(err, &permanent) || !strings.Contains(err.Error(), "no binaries for Kubernetes v1.30.0 (it has v1.37.1)") {
		t.Errorf("unknown version: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.cfg.DataDir, "clusters")); !os.IsNotExist(err) {
		t.Errorf("a failed start left a directory: %v", err)
	}

	// Without the front no cluster could be reached: the driver does not start.
	if _, err := New(Config{DataDir: t.TempDir(), FrontBinary: filepath.Join(t.TempDir(), "containerservice-front")}); err == nil ||
		!strings.Contains(err.Error(), "containerservice-front") || !strings.Contains(err.Error(), "--front-binary") {
		t.Errorf("missing front: %v", err)
	}
}

// TestControlPlanesOutliveTheDriverAndAreAdopted is a server restart at the driver's
// level: the processes keep running with their pids when the driver shuts down, the next
// driver adopts them instead of starting them again, and Delete stops them.
func TestControlPlanesOutliveTheDriverAndAreAdopted(t *testing.T) {
	first, cfg, c, l, before := firstDriver(t)
	if len(before) != 3 || before["etcd"] == 0 || before["kube-apiserver-0"] == 0 || before["containerservice-front"] == 0 {
		t.Fatalf("running after the first Ensure: %v, want etcd, the front and kube-apiserver in slot 0", before)
	}

	// Another driver on the same data directory is refused while the first runs.
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "another containerservice-apiserver") {
		t.Errorf("a second driver on the same data directory: %v", err)
	}

	first.Shutdown()
	if after := pids(t, l); !maps.Equal(after, before) {
		t.Fatalf("the control plane did not outlive the driver: %v then %v", before, after)
	}

	second := newDriver(t, cfg)
	if _, err := second.Ensure(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if after := pids(t, l); !maps.Equal(after, before) {
		t.Errorf("not adopted: pids %v then %v", before, after)
	}
	second.mu.Lock()
	inst := second.clusters["acme/prod"]
	second.mu.Unlock()
	if sup := inst.components[slotComponent(0)]; sup == nil || sup.Pid() != before["kube-apiserver-0"] {
		t.Errorf("the adopted kube-apiserver is not supervised")
	}

	// A Delete for another UID (an older Cluster of the same name) touches nothing.
	if err := second.Delete(context.Background(), "acme", "prod", "someone-else"); err != nil {
		t.Fatal(err)
	}
	if after := pids(t, l); len(after) != 3 {
		t.Errorf("a delete of another UID stopped processes: %v", after)
	}
	if err := second.Delete(context.Background(), "acme", "prod", "u1"); err != nil {
		t.Fatal(err)
	}
	for name, pid := range before {
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			t.Errorf("%s (pid %d) still runs after Delete", name, pid)
		}
	}
	if _, err := os.Stat(l.dir); !os.IsNotExist(err) {
		t.Errorf("directory left after Delete: %v", err)
	}
}

// zombie reports whether the process has exited (a zombie not reaped yet counts).
func zombie(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && len(data) > i+2 && data[i+2] == 'Z'
}

// TestStartsAreBounded: with one start slot, a second control plane waits (and says so)
// while the first starts, and goes once the first is deleted.
func TestStartsAreBounded(t *testing.T) {
	data := t.TempDir()
	// After the driver's Shutdown (cleanups run last first): a driver still supervising
	// would start what this stops again.
	t.Cleanup(func() { StopControlPlanes(data) })
	cfg := fakeConfig(t, data)
	cfg.MaxConcurrentStarts = 1
	d := newDriver(t, cfg)
	a, b := cluster("a", "ua"), cluster("b", "ub")
	if _, err := d.Ensure(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	obs, err := d.Ensure(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if msg := obs.Components[provisioner.Etcd].Message; !strings.Contains(msg, "waiting to start") || !strings.Contains(msg, "at most 1") {
		t.Errorf("the second cluster does not wait for a slot: %q", msg)
	}
	if running := pids(t, d.layout("acme", "b")); len(running) != 0 {
		t.Errorf("the second cluster started without a slot: %v", running)
	}
	if err := d.Delete(context.Background(), "acme", "a", "ua"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Ensure(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if running := waitPids(t, d.layout("acme", "b"), 3); len(running) != 3 {
		t.Errorf("the second cluster did not start once a slot was free: %v", running)
	}
}

func TestPortsSurviveRestartsAndNeverCollide(t *testing.T) {
	data := t.TempDir()
	d, err := New(Config{FrontBinary: someFront(t), DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	first := layout{dir: filepath.Join(data, "clusters", "acme", "a")}
	if err := first.create(); err != nil {
		t.Fatal(err)
	}
	a, err := d.ports.ports(first)
	if err != nil {
		t.Fatal(err)
	}
	d.Shutdown()

	// A new driver (a restarted server) reserves a's ports before handing out any.
	d2 := newDriver(t, Config{FrontBinary: someFront(t), DataDir: data})
	second := layout{dir: filepath.Join(data, "clusters", "acme", "b")}
	if err := second.create(); err != nil {
		t.Fatal(err)
	}
	for name, p := range a {
		if !d2.ports.taken[p] {
			t.Errorf("after a restart, %s port %d of a cluster not started yet is not reserved", name, p)
		}
	}
	b, err := d2.ports.ports(second)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range b {
		if p < portRangeFirst || p >= portRangeFirst+portRangeSize {
			t.Errorf("%s port %d outside %d+%d", name, p, portRangeFirst, portRangeSize)
		}
	}
	again, err := d2.ports.ports(first)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range a {
		if again[name] != p {
			t.Errorf("%s port changed across restarts: %d then %d", name, p, again[name])
		}
	}
}

// prepared makes a cluster's directory and PKI as Ensure would, without processes.
func prepared(t *testing.T, d *Driver, c *v1alpha1.Cluster) *instance {
	t.Helper()
	inst, err := d.lockInstance(key(c))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.mu.Unlock()
	if err := d.prepare(inst, c, "/nonexistent"); err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestDeleteNeedsTheOwnersUID: data goes only for the UID it was made for, and a corrupt
// ports.json never blocks a deletion.
func TestDeleteNeedsTheOwnersUID(t *testing.T) {
	d := newDriver(t, Config{FrontBinary: someFront(t), DataDir: t.TempDir()})
	c := cluster("gone", "u1")
	inst := prepared(t, d, c)
	ports := inst.ports
	if err := d.Delete(context.Background(), "acme", "gone", "u2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inst.layout.dir); err != nil {
		t.Fatalf("a delete for another UID removed the directory: %v", err)
	}
	if err := d.Delete(context.Background(), "acme", "gone", ""); err == nil {
		t.Error("a delete without a UID was accepted")
	}
	if err := os.WriteFile(inst.layout.portsFile(), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(context.Background(), "acme", "gone", "u1"); err != nil {
		t.Fatalf("a corrupt ports.json blocked the deletion: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.cfg.DataDir, "clusters", "acme")); !os.IsNotExist(err) {
		t.Errorf("tenant directory left: %v", err)
	}
	if held, _ := d.Held(); len(held) != 0 {
		t.Errorf("held after delete: %v", held)
	}
	if err := d.Delete(context.Background(), "acme", "gone", "u1"); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
	_ = ports
}

// TestUnaccountedDataIsQuarantinedAndComesBack: a control plane no Cluster accounts for is
// moved whole to the quarantine (refused while it runs), its ports stay reserved, and it
// is brought back with its CAs when its Cluster reappears.
func TestUnaccountedDataIsQuarantinedAndComesBack(t *testing.T) {
	data := t.TempDir()
	d, err := New(Config{FrontBinary: someFront(t), DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	c := cluster("prod", "u1")
	inst := prepared(t, d, c)
	caBefore := inst.certs.Load().ca.Fingerprint()
	ports := inst.ports
	d.Shutdown()

	// A restarted server that sees no Cluster (an empty etcd).
	d = newDriver(t, Config{FrontBinary: someFront(t), DataDir: data})
	held, err := d.Held()
	if err != nil || len(held) != 1 || held[0] != (provisioner.Held{Namespace: "acme", Name: "prod", UID: "u1"}) {
		t.Fatalf("held: %v %v", held, err)
	}

	// While one of its processes runs, it stays where it is.
	l := d.layout("acme", "prod")
	sleeper := supervisor.Supervise(supervisor.Component{Name: "etcd", Binary: "/bin/sleep", Args: []string{"600"}, LogDir: l.logs(), StateFile: l.record("etcd")})
	for !sleeper.Running() {
		time.Sleep(10 * time.Millisecond)
	}
	if held, _ := d.Held(); !held[0].Running {
		t.Error("a running control plane is not reported running")
	}
	if _, err := d.Quarantine(context.Background(), held[0]); !errors.Is(err, provisioner.ErrRunning) {
		t.Errorf("quarantine of a running control plane: %v, want ErrRunning", err)
	}
	sleeper.Stop()

	dest, err := d.Quarantine(context.Background(), held[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "etcd")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, f := range []string{"uid", "ports.json", "pki/ca.pair", quarantineNote} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("quarantine lacks %s: %v", f, err)
		}
	}
	if _, err := os.Stat(l.dir); !os.IsNotExist(err) {
		t.Errorf("the directory is still in place: %v", err)
	}

	// A new cluster never gets its ports, also after another restart.
	d.Shutdown()
	d = newDriver(t, Config{FrontBinary: someFront(t), DataDir: data})
	for name, p := range ports {
		if !d.ports.taken[p] {
			t.Errorf("%s port %d of a quarantined cluster is free for others", name, p)
		}
	}

	// Its Cluster comes back (the right etcd again): so does its control plane.
	back := prepared(t, d, c)
	if back.certs.Load().ca.Fingerprint() != caBefore {
		t.Error("the cluster came back with a new CA: its data was not restored")
	}
	if _, err := os.Stat(filepath.Join(l.dir, quarantineNote)); !os.IsNotExist(err) {
		t.Errorf("the quarantine note stayed: %v", err)
	}
}

// TestAnUnreadableOwnerIsNoMissingOwner: a uid file that cannot be read stops the start
// with an error; the cluster's data is neither quarantined nor replaced.
func TestAnUnreadableOwnerIsNoMissingOwner(t *testing.T) {
	d := newDriver(t, Config{FrontBinary: someFront(t), DataDir: t.TempDir()})
	c := cluster("prod", "u1")
	inst := prepared(t, d, c)
	ca := inst.certs.Load().ca.Fingerprint()
	d.forget(inst)
	// A uid "file" that is a directory: reading it fails (root reads any file).
	if err := os.Remove(inst.layout.uidFile()); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(inst.layout.uidFile(), 0o700); err != nil {
		t.Fatal(err)
	}
	again, err := d.lockInstance(key(c))
	if err != nil {
		t.Fatal(err)
	}
	err = d.prepare(again, c, "/nonexistent")
	again.mu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "read the owner") {
		t.Errorf("prepare with an unreadable owner: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.cfg.DataDir, "quarantine")); !os.IsNotExist(err) {
		t.Errorf("the cluster's data was quarantined: %v", err)
	}
	if _, err := d.Held(); err == nil {
		t.Error("Held took an unreadable owner for none")
	}
	// A directory with no uid file at all is not claimed either: the sweep quarantines it.
	if err := os.Remove(inst.layout.uidFile()); err != nil {
		t.Fatal(err)
	}
	again, _ = d.lockInstance(key(c))
	err = d.prepare(again, c, "/nonexistent")
	again.mu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "unknown owner") {
		t.Errorf("prepare over a directory of unknown owner: %v", err)
	}
	if got, _ := pki.LoadOrCreateCA(filepath.Join(inst.layout.dir, "pki"), "ca"); got.Fingerprint() != ca {
		t.Error("the cluster's CA was replaced")
	}
}

// TestANewClusterOfAnOldNameQuarantinesTheOldData: the old data is kept, not reused.
func TestANewClusterOfAnOldNameQuarantinesTheOldData(t *testing.T) {
	d := newDriver(t, Config{FrontBinary: someFront(t), DataDir: t.TempDir()})
	old := prepared(t, d, cluster("same", "old"))
	oldCA := old.certs.Load().ca.Fingerprint()
	d.forget(old)

	fresh := prepared(t, d, cluster("same", "new"))
	if fresh.certs.Load().ca.Fingerprint() == oldCA {
		t.Error("a new cluster of an old name got the old CA")
	}
	if d.quarantined("old") == "" {
		t.Error("the old cluster's data is not in the quarantine")
	}
	if err := d.Delete(context.Background(), "acme", "same", "old"); err != nil {
		t.Fatal(err)
	}
	if d.quarantined("old") != "" {
		t.Error("the deletion of the old Cluster did not remove its quarantined data")
	}
	if _, err := os.Stat(fresh.layout.dir); err != nil {
		t.Errorf("deleting the old UID removed the new cluster: %v", err)
	}
}

// TestRotationIsOncePerToken: asking again with the same token (a retried status write)
// keeps the CA; a new token replaces it, and platform credentials follow.
func TestRotationIsOncePerToken(t *testing.T) {
	d := newDriver(t, Config{FrontBinary: someFront(t), DataDir: t.TempDir()})
	c := cluster("rot", "u1")
	inst := prepared(t, d, c)
	before := inst.certs.Load().client.Fingerprint()
	cfgBefore, err := d.RESTConfig(context.Background(), c, provisioner.PlatformManager)
	if err != nil {
		t.Fatal(err)
	}
	if !cfgBefore.DisableCompression {
		t.Error("clients of a loopback kube-apiserver ask for gzip: a (de)compressor per watch on both ends")
	}

	if err := d.RotateCredentials(context.Background(), c, "t1"); err != nil {
		t.Fatal(err)
	}
	t1 := inst.certs.Load().client.Fingerprint()
	if t1 == before {
		t.Fatal("rotation kept the client CA")
	}
	if err := d.RotateCredentials(context.Background(), c, "t1"); err != nil {
		t.Fatal(err)
	}
	if inst.certs.Load().client.Fingerprint() != t1 {
		t.Error("the same token rotated twice")
	}
	// A rotation cut short by a crash, after its new CA was made: asked again, it uses that
	// CA, so what was issued from it meanwhile stays valid.
	sum := sha256.Sum256([]byte("t2"))
	staged, err := pki.LoadOrCreateCA(filepath.Join(inst.layout.dir, "pki"), "client-ca.next-"+hex.EncodeToString(sum[:8]))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RotateCredentials(context.Background(), c, "t2"); err != nil {
		t.Fatal(err)
	}
	if got := inst.certs.Load().client.Fingerprint(); got != staged.Fingerprint() {
		t.Error("a rotation asked again after a crash made another CA")
	}
	t1 = staged.Fingerprint()
	if err := d.RotateCredentials(context.Background(), c, "t2"); err != nil {
		t.Fatal(err)
	}
	// A restarted server (a fresh instance) remembers the token too.
	d.forget(inst)
	inst = prepared(t, d, c)
	if err := d.RotateCredentials(context.Background(), c, "t2"); err != nil {
		t.Fatal(err)
	}
	if inst.certs.Load().client.Fingerprint() != t1 {
		t.Error("the same token rotated again after a restart")
	}

	cfgAfter, err := d.RESTConfig(context.Background(), c, provisioner.PlatformManager)
	if err != nil {
		t.Fatal(err)
	}
	if string(cfgAfter.CertData) == string(cfgBefore.CertData) {
		t.Error("the platform manager kept a credential of the old client CA")
	}
	cert := parseCert(t, cfgAfter.CertData)
	if cert.Subject.CommonName != string(provisioner.PlatformManager) || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "system:masters" {
		t.Errorf("platform manager subject %v", cert.Subject)
	}
	if err := cert.CheckSignatureFrom(inst.certs.Load().client.Certificate()); err != nil {
		t.Errorf("not signed by the current client CA: %v", err)
	}
	proxy, err := d.RESTConfig(context.Background(), c, provisioner.Proxy)
	if err != nil {
		t.Fatal(err)
	}
	if p := parseCert(t, proxy.CertData); p.Subject.CommonName != "ucs:proxy" || len(p.Subject.Organization) != 0 {
		t.Errorf("proxy subject %v", p.Subject)
	}
	if _, _, err := d.AdminKubeconfig(context.Background(), c, provisioner.Credential{User: "x", Groups: []string{"system:masters"}, TTL: time.Hour}); err == nil {
		t.Error("an admin kubeconfig in system:masters was issued")
	}
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestExternalHostIsServed(t *testing.T) {
	for host, bind := range map[string]string{"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "10.0.0.5": "0.0.0.0", "k8s.example.com": "0.0.0.0"} {
		d := newDriver(t, Config{FrontBinary: someFront(t), DataDir: t.TempDir(), ExternalHost: host})
		if got := d.bindAddress(); got != bind {
			t.Errorf("external host %s: kube-apiserver binds %s, want %s", host, got, bind)
		}
		inst := prepared(t, d, cluster("prod", "u1"))
		pemData, err := os.ReadFile(inst.layout.pki("apiserver.crt"))
		if err != nil {
			t.Fatal(err)
		}
		if err := parseCert(t, pemData).VerifyHostname(host); err != nil {
			t.Errorf("kube-apiserver's certificate is not valid for the external host %s: %v", host, err)
		}
	}
}

func TestExpiringCertificatesAreRenewed(t *testing.T) {
	d := newDriver(t, Config{FrontBinary: someFront(t), DataDir: t.TempDir()})
	inst := prepared(t, d, cluster("old", "u1"))
	before, _ := os.ReadFile(inst.layout.pki("apiserver.crt"))
	// A fresh one is left alone.
	if err := d.renewIfExpiring(inst); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(inst.layout.pki("apiserver.crt")); string(after) != string(before) {
		t.Error("certificates with a year left were issued again")
	}
	// As after 340 days of uptime.
	var rec leaves
	data, _ := os.ReadFile(inst.layout.leavesFile())
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	rec.NotAfter = time.Now().Add(25 * 24 * time.Hour)
	data, _ = json.Marshal(rec)
	if err := os.WriteFile(inst.layout.leavesFile(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.renewIfExpiring(inst); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(inst.layout.pki("apiserver.crt")); string(after) == string(before) {
		t.Error("expiring certificates were not renewed")
	}
	if current, err := leavesCurrent(inst.layout, wantLeaves(inst.certs.Load(), inst.ports, d.cfg.ExternalHost)); !current || err != nil {
		t.Errorf("the renewal was not recorded: %v", err)
	}
}

// TestNodeAgentRunsOnlyWhileAsked: the node agent starts when the cluster gets nodes,
// outlives the driver and is adopted like the control plane, stops when the cluster has
// no nodes, and goes with the cluster.
func TestNodeAgentRunsOnlyWhileAsked(t *testing.T) {
	first, cfg, c, l, _ := firstDriver(t)
	if h, err := first.EnsureNodeAgent(context.Background(), c, true); err != nil || h.Healthy {
		t.Fatalf("agent: %+v %v (the fake serves no health check)", h, err)
	}
	agent := waitPids(t, l, 4)["kwok"]
	if agent == 0 {
		t.Fatal("no node agent runs")
	}
	args, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(agent), "cmdline"))
	for _, want := range []string{"--manage-nodes-with-label-selector=" + NodeAgentSelector, "--kubeconfig=" + l.kubeconfig("node-agent"), "node-agent-serving.crt"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("agent command line lacks %q: %q", want, args)
		}
	}
	if _, err := os.Stat(l.pki("node-agent-serving.crt")); err != nil {
		t.Errorf("no serving certificate for the agent: %v", err)
	}
	first.Shutdown()

	second := newDriver(t, cfg)
	if _, err := second.Ensure(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, err := second.EnsureNodeAgent(context.Background(), c, true); err != nil {
		t.Fatal(err)
	}
	if got := pids(t, l)["kwok"]; got != agent {
		t.Errorf("agent pid %d after a restart, want %d adopted", got, agent)
	}
	second.Shutdown()

	// An upgrade that changes the agent's configuration restarts the adopted agent, which
	// reads it only when it starts.
	saved := kwok.Config
	t.Cleanup(func() { kwok.Config = saved })
	kwok.Config = append(append([]byte{}, saved...), "# another configuration\n"...)
	second = newDriver(t, cfg)
	if _, err := second.Ensure(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, err := second.EnsureNodeAgent(context.Background(), c, true); err != nil {
		t.Fatal(err)
	}
	// The old agent's record stays until the new one's is written (and the old process,
	// a child of this test, stays a zombie): wait for the new pid.
	deadline := time.Now().Add(10 * time.Second)
	got := pids(t, l)["kwok"]
	for (got == agent || got == 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got = pids(t, l)["kwok"]
	}
	if got == agent || got == 0 {
		t.Errorf("agent pid %d after an upgrade of its configuration, want a new one (was %d)", got, agent)
	}
	if written, _ := os.ReadFile(l.nodeAgentConfig()); string(written) != string(kwok.Config) {
		t.Error("the new configuration was not written")
	}
	if _, err := second.EnsureNodeAgent(context.Background(), c, false); err != nil {
		t.Fatal(err)
	}
	if got := pids(t, l); got["kwok"] != 0 || len(got) != 3 {
		t.Errorf("processes %v after the last node went, want the control plane only", got)
	}
	if _, err := second.EnsureNodeAgent(context.Background(), c, true); err != nil {
		t.Fatal(err)
	}
	again := waitPids(t, l, 4)["kwok"]
	if err := second.Delete(context.Background(), "acme", "prod", "u1"); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(again, 0) == nil && !zombie(again) {
		t.Errorf("the node agent (pid %d) still runs after Delete", again)
	}
}
