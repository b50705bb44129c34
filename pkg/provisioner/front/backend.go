package front

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

const (
	// probeTimeout bounds one probe of /readyz.
	probeTimeout = time.Second
	// probeIdle is how long a probe's connection is kept for the next probe.
	probeIdle = 5 * time.Second
	// unhealthyAfter consecutive failures (probes, or dials of client connections) take a
	// healthy backend out of rotation. One is not enough: a single probe lost to a
	// passing stall (a 1 s timeout on a busy small machine) would take out a serving
	// kube-apiserver, and with one replica refuse every client until the next probe.
	// Two in a row mean it is gone, found within two intervals; meanwhile a backend that
	// refuses connections costs nothing, since a failed dial moves on to the next one.
	// One success is enough to come in: /readyz answers 200 only once the kube-apiserver
	// itself considers every one of its checks passed.
	unhealthyAfter = 2
)

// backend is the front's state of one backend; the Front's mutex guards it.
type backend struct {
	name, address string
	healthy       bool
	fails         int // consecutive failed probes and dials
	lastErr       string
	lastProbe     time.Time
	draining      bool
	drainDeadline time.Time // when its connections are closed, while draining
	removed       bool
	active        int // connections attached or being dialled
	conns         map[*conn]struct{}
	stopProbe     context.CancelFunc // nil unless a probe loop runs
}

// usable reports whether the backend may take a new connection.
func (b *backend) usable() bool {
	return b.healthy && !b.draining && !b.removed
}

// apply makes the backends those of want: kept ones keep their health and connections,
// new ones start unhealthy and probed, left-out ones drain. f.mu is held.
func (f *Front) apply(want []Backend, now time.Time) {
	key := func(name, address string) string { return name + "\x00" + address }
	current := map[string]*backend{}
	for _, b := range f.backends {
		if !b.removed {
			current[key(b.name, b.address)] = b
		}
	}
	var next []*backend
	for _, w := range want {
		k := key(w.Name, w.Address)
		b, ok := current[k]
		if ok {
			delete(current, k)
		} else {
			b = &backend{name: w.Name, address: w.Address, conns: map[*conn]struct{}{}}
			klog.InfoS("Backend added", "backend", b.name, "address", b.address, "draining", w.Draining)
			f.startProbe(b)
		}
		f.setDraining(b, w.Draining, now)
		next = append(next, b)
	}
	for _, b := range f.backends {
		if !b.removed && current[key(b.name, b.address)] != b {
			continue // kept above
		}
		if !b.removed {
			f.setDraining(b, true, now)
			b.removed = true
			if b.stopProbe != nil {
				b.stopProbe()
				b.stopProbe = nil
			}
			klog.InfoS("Backend removed", "backend", b.name, "address", b.address, "active", b.active)
		}
		if b.active > 0 {
			next = append(next, b)
		}
	}
	f.backends = next
	f.wakeDrains()
}

// setDraining starts or ends a backend's drain. f.mu is held.
func (f *Front) setDraining(b *backend, draining bool, now time.Time) {
	switch {
	case draining && !b.draining:
		b.draining = true
		b.drainDeadline = now.Add(time.Duration(f.cfg.DrainTimeout))
		klog.InfoS("Backend draining", "backend", b.name, "address", b.address, "active", b.active, "deadline", b.drainDeadline)
	case !draining && b.draining && !b.removed:
		b.draining, b.drainDeadline = false, time.Time{}
		klog.InfoS("Backend back in rotation", "backend", b.name, "address", b.address)
	}
}

// startProbe starts probing a backend once Run runs. f.mu is held.
func (f *Front) startProbe(b *backend) {
	if f.probeCtx == nil || b.stopProbe != nil {
		return
	}
	ctx, cancel := context.WithCancel(f.probeCtx)
	b.stopProbe = cancel
	f.probeWG.Add(1)
	go f.probeLoop(ctx, b)
}

// unhealthyProbeInterval is the time between two probes of a backend out of rotation,
// when shorter than the config's ProbeInterval.
const unhealthyProbeInterval = 200 * time.Millisecond

// probeLoop probes a backend at once, then every ProbeInterval (more often while it is
// unhealthy), until ctx ends.
func (f *Front) probeLoop(ctx context.Context, b *backend) {
	defer f.probeWG.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		client := f.probes
		f.mu.Unlock()
		err := probe(ctx, client, b.address)
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		f.record(b, err)
		interval := time.Duration(f.cfg.ProbeInterval)
		if !b.healthy {
			// A kube-apiserver coming up joins within moments of being ready, not up to
			// a whole interval later: a new cluster's first answer waits for it.
			interval = min(interval, unhealthyProbeInterval)
		}
		f.mu.Unlock()
		t.Reset(interval)
	}
}

// probe asks a backend's /readyz, anonymously, trusting the cluster CA.
func probe(ctx context.Context, client *http.Client, address string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	url := "https://" + address + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe: %s answered %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// record takes a probe's result. f.mu is held.
func (f *Front) record(b *backend, err error) {
	b.lastProbe = time.Now()
	if err != nil {
		f.failed(b, err)
		return
	}
	b.fails, b.lastErr = 0, ""
	if !b.healthy {
		b.healthy = true
		klog.InfoS("Backend healthy", "backend", b.name, "address", b.address, "draining", b.draining)
	}
}

// failed counts a failed probe or dial. f.mu is held.
func (f *Front) failed(b *backend, err error) {
	b.fails++
	b.lastErr = err.Error()
	if b.healthy && b.fails >= unhealthyAfter {
		b.healthy = false
		klog.InfoS("Backend unhealthy; out of rotation", "backend", b.name, "address", b.address, "failures", b.fails, "err", err)
	}
}

// wakeDrains has the drain loop look at the deadlines again. f.mu is held.
func (f *Front) wakeDrains() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// drainLoop closes the connections of draining backends whose deadline passed.
func (f *Front) drainLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		wait := time.Hour
		if next := f.expireDrains(time.Now()); !next.IsZero() {
			wait = time.Until(next)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		case <-t.C:
		}
	}
}

// expireDrains closes the connections of backends drained past their deadline and
// returns the next deadline, or zero.
func (f *Front) expireDrains(now time.Time) (next time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.backends {
		if !b.draining {
			continue
		}
		if now.Before(b.drainDeadline) {
			if next.IsZero() || b.drainDeadline.Before(next) {
				next = b.drainDeadline
			}
			continue
		}
		closed := 0
		for c := range b.conns {
			if c.close() {
				closed++
			}
		}
		if closed > 0 {
			klog.InfoS("Drain timeout: closed the backend's connections", "backend", b.name, "address", b.address, "count", closed)
		}
	}
	return next
}
