package front

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// requestLoop sends requests through the front one after another, each on a new
// connection, until stopped, counting those that fail.
type requestLoop struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	quit, done chan struct{}
	once       sync.Once
}

func startLoop(t *testing.T, c *http.Client, addr string) *requestLoop {
	l := &requestLoop{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.quit:
				return
			default:
			}
			if _, err := hit(c, addr); err != nil {
				l.failed.Add(1)
				l.firstErr.CompareAndSwap(nil, err.Error())
			} else {
				l.ok.Add(1)
			}
		}
	}()
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *requestLoop) stop() (ok, failed int64) {
	l.once.Do(func() { close(l.quit) })
	<-l.done
	return l.ok.Load(), l.failed.Load()
}

// waitMore waits for n more successful requests.
func (l *requestLoop) waitMore(t *testing.T, n int64) {
	t.Helper()
	mark := l.ok.Load()
	waitFor(t, "more requests through the front", func() bool { return l.ok.Load() >= mark+n })
}

// TestSurgeRefusesNothing replaces backend a by b as the driver will replace a
// kube-apiserver: b starts on a spare port, is added, turns healthy; a drains while a
// long request on it goes on to its end, and is removed at 0 connections. Clients keep
// coming throughout, and not one fails.
func TestSurgeRefusesNothing(t *testing.T) {
	a := newTestBackend(t, "a", true)
	ca := writeCA(t, a)
	f, addr, _ := startFront(t, testConfig(ca, backendOf(a)))
	waitFor(t, "a healthy", healthy(f, "a"))

	long := openStream(t, client(a), addr)
	waitFor(t, "the long request flowing", func() bool { return long.lines.Load() > 2 })
	loop := startLoop(t, client(a), addr)
	loop.waitMore(t, 20)

	// b is added before it is ready: it gets nothing until its first successful probe.
	b := newTestBackend(t, "b", false)
	if err := f.Update(testConfig(ca, backendOf(a), backendOf(b))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's failed probe", func() bool { s, _ := backendStatus(f, "b"); return s.LastProbeError != "" })
	loop.waitMore(t, 20)
	if n := b.hits.Load(); n != 0 {
		t.Errorf("b got %d requests before its first successful probe", n)
	}
	b.ready.Store(true)
	waitFor(t, "b healthy", healthy(f, "b"))
	waitFor(t, "b serving", func() bool { return b.hits.Load() > 0 })

	// a drains: no new connection, the long request goes on.
	if err := f.Update(testConfig(ca, Backend{Name: "a", Address: a.addr(), Draining: true}, backendOf(b))); err != nil {
		t.Fatal(err)
	}
	aHits, lines := a.hits.Load(), long.lines.Load()
	loop.waitMore(t, 50)
	if n := a.hits.Load() - aHits; n > 1 { // one request may have been under way
		t.Errorf("draining a got %d new requests", n)
	}
	if s, _ := backendStatus(f, "a"); !s.Draining || s.Active != 1 {
		t.Errorf("a's status %+v: want draining with the long request alone", s)
	}
	waitFor(t, "the long request flowing on draining a", func() bool { return long.lines.Load() >= lines+5 })

	// The long request ends by itself; a's count falls to 0 and a goes.
	a.endStream()
	if err := long.ended(t, 10*time.Second); err != nil {
		t.Errorf("the long request on a ended with %v: want its proper end", err)
	}
	waitFor(t, "a holding no connection", func() bool { s, _ := backendStatus(f, "a"); return s.Active == 0 })
	if err := f.Update(testConfig(ca, backendOf(b))); err != nil {
		t.Fatal(err)
	}
	if s, ok := backendStatus(f, "a"); ok {
		t.Errorf("a, removed with no connection, still listed: %+v", s)
	}
	loop.waitMore(t, 20)

	ok, failed := loop.stop()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed during the surge (first: %v): want 0", failed, ok+failed, loop.firstErr.Load())
	}
	t.Logf("%d requests during the surge, none failed; a served %d, b %d", ok, a.hits.Load(), b.hits.Load())
}

func TestDrainTimeoutClosesWhatOutlivesIt(t *testing.T) {
	for _, removed := range []bool{false, true} {
		name := map[bool]string{false: "draining", true: "removed"}[removed]
		t.Run(name, func(t *testing.T) {
			a, b := newTestBackend(t, "a", true), newTestBackend(t, "b", true)
			cfg := testConfig(writeCA(t, a), backendOf(a))
			cfg.DrainTimeout = Duration(time.Second)
			f, addr, _ := startFront(t, cfg)
			waitFor(t, "a healthy", healthy(f, "a"))
			long := openStream(t, client(a), addr)
			waitFor(t, "the stream flowing", func() bool { return long.lines.Load() > 2 })

			cfg.Backends = []Backend{{Name: "a", Address: a.addr(), Draining: true}, backendOf(b)}
			if removed {
				cfg.Backends = cfg.Backends[1:]
			}
			start := time.Now()
			if err := f.Update(cfg); err != nil {
				t.Fatal(err)
			}
			lines := long.lines.Load()
			waitFor(t, "the stream flowing after the drain began", func() bool { return long.lines.Load() >= lines+3 })
			if s, ok := backendStatus(f, "a"); !ok || s.Active != 1 || !s.Draining || s.Removed != removed {
				t.Errorf("a's status %+v (listed: %v): want draining, removed %v, one connection", s, ok, removed)
			}
			if err := long.ended(t, 5*time.Second); err == nil {
				t.Fatal("the stream ended cleanly: want it cut at the drain timeout")
			}
			if d := time.Since(start); d < time.Second || d > 4*time.Second {
				t.Errorf("the stream was cut %v after the drain began: want the drain timeout, 1 s", d)
			}
			waitFor(t, "a holding no connection", func() bool {
				s, ok := backendStatus(f, "a")
				return (!ok && removed) || (ok && !removed && s.Active == 0)
			})
			waitFor(t, "b healthy", healthy(f, "b"))
			if name, err := hit(client(a), addr); err != nil || name != "b" {
				t.Errorf("a request after the drain went to %q (%v): want b", name, err)
			}
		})
	}
}

// A draining backend takes new connections only when no other can: its replacement
// failed after the drain began, and serving from the one being retired beats serving
// no one. Once another is usable again, the draining one gets nothing new.
func TestDrainingBackendServesWhenNoOtherCan(t *testing.T) {
	a, b := newTestBackend(t, "a", true), newTestBackend(t, "b", true)
	ca := writeCA(t, a)
	f, addr, _ := startFront(t, testConfig(ca, Backend{Name: "a", Address: a.addr(), Draining: true}, backendOf(b)))
	waitFor(t, "a and b healthy", func() bool { return healthy(f, "a")() && healthy(f, "b")() })
	cl := client(a)
	for i := range 20 {
		if name, err := hit(cl, addr); err != nil || name != "b" {
			t.Fatalf("request %d went to %q (%v): want b, a draining", i, name, err)
		}
	}
	b.ready.Store(false)
	waitFor(t, "b out of rotation", func() bool { return !healthy(f, "b")() })
	for i := range 20 {
		if name, err := hit(cl, addr); err != nil || name != "a" {
			t.Fatalf("request %d went to %q (%v): want draining a, the only healthy one", i, name, err)
		}
	}
	b.ready.Store(true)
	waitFor(t, "b back", healthy(f, "b"))
	for i := range 20 {
		if name, err := hit(cl, addr); err != nil || name != "b" {
			t.Fatalf("request %d went to %q (%v): want b again", i, name, err)
		}
	}
}
