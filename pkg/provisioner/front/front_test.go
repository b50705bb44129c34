package front

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSpreadsOverHealthyBackendsAndSkipsUnready(t *testing.T) {
	a, b, c := newTestBackend(t, "a", true), newTestBackend(t, "b", true), newTestBackend(t, "c", false)
	f, addr, _ := startFront(t, testConfig(writeCA(t, a), backendOf(a), backendOf(b), backendOf(c)))
	waitFor(t, "a and b healthy", func() bool { return healthy(f, "a")() && healthy(f, "b")() })
	waitFor(t, "c's failed probe", func() bool { s, _ := backendStatus(f, "c"); return strings.Contains(s.LastProbeError, "500") })

	cl := client(a)
	for i := range 100 {
		if _, err := hit(cl, addr); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if a.hits.Load() < 40 || b.hits.Load() < 40 {
		t.Errorf("100 requests went %d to a and %d to b: want them spread evenly", a.hits.Load(), b.hits.Load())
	}
	if n := c.hits.Load(); n != 0 {
		t.Errorf("c, whose /readyz answers 500, got %d requests", n)
	}

	// b turns unready: after two failed probes it gets nothing new.
	b.ready.Store(false)
	waitFor(t, "b out of rotation", func() bool { return !healthy(f, "b")() })
	before := b.hits.Load()
	for i := range 50 {
		if name, err := hit(cl, addr); err != nil || name != "a" {
			t.Fatalf("request %d went to %q (%v): want a alone", i, name, err)
		}
	}
	if n := b.hits.Load() - before; n != 0 {
		t.Errorf("unready b got %d requests", n)
	}
	if s, _ := backendStatus(f, "c"); s.Healthy || s.Active != 0 {
		t.Errorf("c's status %+v: want unhealthy, no connection", s)
	}
}

func TestDialFailureMovesToTheNextBackend(t *testing.T) {
	a, b := newTestBackend(t, "a", true), newTestBackend(t, "b", true)
	cfg := testConfig(writeCA(t, a), backendOf(a), backendOf(b))
	// One probe each, at the start: only failed dials can tell that b is gone.
	cfg.ProbeInterval = Duration(time.Hour)
	f, addr, _ := startFront(t, cfg)
	waitFor(t, "a and b healthy", func() bool { return healthy(f, "a")() && healthy(f, "b")() })

	cl := client(a)
	failed := 0
	for i := range 200 {
		if i == 50 {
			b.srv.Close() // b stops listening, still healthy as far as probes know
		}
		if _, err := hit(cl, addr); err != nil {
			failed++
			t.Errorf("request %d: %v", i, err)
		}
	}
	if failed != 0 {
		t.Fatalf("%d of 200 requests failed while b stopped listening: want 0", failed)
	}
	s, _ := backendStatus(f, "b")
	if s.Healthy || !strings.Contains(s.LastProbeError, "dial") {
		t.Errorf("b's status %+v: want it out of rotation after failed dials", s)
	}
	if n := a.hits.Load(); n < 150 {
		t.Errorf("a served %d requests: want every one after b stopped", n)
	}
}

func TestNoHealthyBackendClosesTheClientPromptly(t *testing.T) {
	unready := newTestBackend(t, "unready", false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := l.Addr().String()
	l.Close() // nothing listens there any more
	for _, tc := range []struct {
		name     string
		backends []Backend
	}{
		{"none configured", nil},
		{"none ready", []Backend{backendOf(unready), {Name: "gone", Address: gone}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, addr, _ := startFront(t, testConfig(writeCA(t, unready), tc.backends...))
			waitFor(t, "every backend probed", func() bool {
				for _, b := range f.Status().Backends {
					if b.LastProbeError == "" {
						return false
					}
				}
				return true
			})
			start := time.Now()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
			_, err = c.Read(make([]byte, 1))
			var ne net.Error
			if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("read from the front: %v: want the connection closed", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("the connection was closed after %v: want promptly", d)
			}
			if n := f.Status().Unserved; n != 1 {
				t.Errorf("Status counts %d unserved connections: want 1", n)
			}
		})
	}
}

func TestHalfCloseIsPassedOn(t *testing.T) {
	// The client sends, then closes its sending side and waits for the answer: the front
	// must pass the half-close on and still carry the answer back.
	a := newTestBackend(t, "a", true)
	f, addr, _ := startFront(t, testConfig(writeCA(t, a), backendOf(a)))
	waitFor(t, "a healthy", healthy(f, "a"))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(strings.Repeat("x", 100000))); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(c)
	if err != nil || string(answer) != "100000\n" {
		t.Fatalf("answer %q, %v: want \"100000\\n\" then the end", answer, err)
	}
	waitFor(t, "no connection left on a", func() bool { s, _ := backendStatus(f, "a"); return s.Active == 0 })
}

func TestShutdownClosesWhatOutlivesItsTimeout(t *testing.T) {
	a := newTestBackend(t, "a", true)
	cfg := testConfig(writeCA(t, a), backendOf(a))
	cfg.ShutdownTimeout = Duration(200 * time.Millisecond)
	f, addr, stop := startFront(t, cfg)
	waitFor(t, "a healthy", healthy(f, "a"))
	s := openStream(t, client(a), addr)
	waitFor(t, "the stream flowing", func() bool { return s.lines.Load() > 2 })
	start := time.Now()
	stop() // Run must return, its goroutines gone
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Errorf("Run returned %v after its context ended: want the shutdown timeout, 200 ms", d)
	}
	if err := s.ended(t, 5*time.Second); err == nil {
		t.Error("the stream ended cleanly: want it cut at shutdown")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the front's port still accepts after Run returned")
	}
}

func TestUpdateKeepsListenersAndRefusesBadConfigs(t *testing.T) {
	a, b := newTestBackend(t, "a", true), newTestBackend(t, "b", true)
	ca := writeCA(t, a)
	f, addr, _ := startFront(t, testConfig(ca, backendOf(a)))
	waitFor(t, "a healthy", healthy(f, "a"))

	moved := testConfig(ca, backendOf(b))
	moved.Listen = []string{"127.0.0.1:1"}
	if err := f.Update(moved); err != nil {
		t.Fatal(err)
	}
	if got := f.Status().Listen; len(got) != 1 || got[0] != addr {
		t.Errorf("listening on %v after an Update: want %s still (a new Listen takes a restart)", got, addr)
	}
	waitFor(t, "b serving", func() bool { name, err := hit(client(a), addr); return err == nil && name == "b" })

	noCA := testConfig(ca+".missing", backendOf(a))
	if err := f.Update(noCA); err == nil || !strings.Contains(err.Error(), "CA") {
		t.Errorf("Update with a missing CA: %v: want an error naming the CA", err)
	}
	dup := testConfig(ca, backendOf(a), Backend{Name: "a", Address: b.addr()})
	if err := f.Update(dup); err == nil {
		t.Error("Update with a name used twice succeeded")
	}
	if _, ok := backendStatus(f, "a"); ok {
		t.Errorf("a refused Update changed the backends: %+v", f.Status().Backends)
	}
}

func TestNewRefusesATakenPort(t *testing.T) {
	a := newTestBackend(t, "a", true)
	_, addr, _ := startFront(t, testConfig(writeCA(t, a), backendOf(a)))
	cfg := testConfig(writeCA(t, a))
	cfg.Listen = []string{addr}
	if _, err := New(cfg); err == nil {
		t.Fatalf("a second front on %s: want an error", addr)
	}
}

func TestRunTwice(t *testing.T) {
	a := newTestBackend(t, "a", true)
	f, _, _ := startFront(t, testConfig(writeCA(t, a)))
	waitFor(t, "Run started", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.started })
	if err := f.Run(context.Background()); err == nil {
		t.Fatal("a second Run succeeded")
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, json, err string
	}{
		{"minimal", `{"listen":["127.0.0.1:6443"],"caFile":"ca.crt"}`, ""},
		{"full", `{"listen":["127.0.0.1:6443","[::1]:6443"],"caFile":"ca.crt","backends":[{"name":"a","address":"127.0.0.1:7000"},{"name":"b","address":"127.0.0.1:7001","draining":true}],"probeInterval":"250ms","dialTimeout":"2s","drainTimeout":"5m","shutdownTimeout":"3s","future":1}`, ""},
		{"not JSON", `{`, "decode"},
		{"duration as number", `{"listen":["127.0.0.1:6443"],"caFile":"ca.crt","probeInterval":1}`, "duration"},
		{"negative duration", `{"listen":["127.0.0.1:6443"],"caFile":"ca.crt","drainTimeout":"-1s"}`, "drainTimeout"},
		{"no listen", `{"caFile":"ca.crt"}`, "listen"},
		{"listen without port", `{"listen":["127.0.0.1"],"caFile":"ca.crt"}`, "listen[0]"},
		{"no CA", `{"listen":["127.0.0.1:6443"]}`, "caFile"},
		{"backend without name", `{"listen":["127.0.0.1:6443"],"caFile":"ca.crt","backends":[{"address":"127.0.0.1:7000"}]}`, "backends[0].name"},
		{"name twice", `{"listen":["127.0.0.1:6443"],"caFile":"ca.crt","backends":[{"name":"a","address":"127.0.0.1:7000"},{"name":"a","address":"127.0.0.1:7001"}]}`, "backends[1].name"},
		{"address twice", `{"listen":["127.0.0.1:6443"],"caFile":"ca.crt","backends":[{"name":"a","address":"127.0.0.1:7000"},{"name":"b","address":"127.0.0.1:7000"}]}`, "backends[1].address"},
		{"bad port", `{"listen":["127.0.0.1:6443"],"caFile":"ca.crt","backends":[{"name":"a","address":"127.0.0.1:http"}]}`, "backends[0].address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.json))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("ParseConfig: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("ParseConfig: %v: want an error naming %s", err, tc.err)
			}
			if tc.name == "full" {
				d := cfg.withDefaults()
				if d.ProbeInterval != Duration(250*time.Millisecond) || d.DrainTimeout != Duration(5*time.Minute) || !cfg.Backends[1].Draining {
					t.Errorf("decoded %+v", d)
				}
			}
			if tc.name == "minimal" {
				d := cfg.withDefaults()
				if d.ProbeInterval != Duration(time.Second) || d.DialTimeout != Duration(time.Second) || d.DrainTimeout != Duration(time.Minute) {
					t.Errorf("defaults %+v", d)
				}
			}
		})
	}
	if _, err := LoadConfig("/nonexistent/front.json"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadConfig of a missing file: %v", err)
	}
}

// A backend out of rotation is probed more often than the interval, so that a
// kube-apiserver coming up (a new cluster's, a replacement's) joins within moments.
func TestUnhealthyBackendRejoinsWithinMoments(t *testing.T) {
	a := newTestBackend(t, "a", false)
	cfg := testConfig(writeCA(t, a), backendOf(a))
	cfg.ProbeInterval = Duration(time.Hour)
	f, _, _ := startFront(t, cfg)
	waitFor(t, "a's failed probe", func() bool { s, _ := backendStatus(f, "a"); return s.LastProbeError != "" })
	a.ready.Store(true)
	if !waitUntil(2*time.Second, healthy(f, "a")) {
		t.Fatal("a turned ready and was not healthy 2 s later, with an hour between probes of a healthy backend")
	}
}
