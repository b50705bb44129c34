// Package front is a cluster's L4 front: it owns the port a cluster publishes and
// forwards each TCP connection to a ready kube-apiserver behind it.
//
// It exists so that restarting a kube-apiserver (a new certificate, a new flag, an
// upgrade) refuses no connection. Without it the kube-apiserver owns the published port,
// and from the moment it stops until its successor listens every client is refused. With
// it a restart becomes a surge: the new kube-apiserver starts on a spare port, is added
// to the front and turns healthy, then the old one is marked draining (no new
// connections; its open ones end by themselves or at DrainTimeout) and is stopped once
// it holds none.
//
// It forwards TCP, not HTTP: TLS ends at the kube-apiserver, so client certificates
// (break-glass credentials, the proxy's identity) and every protocol upgrade keep working
// as if the client had connected directly, and the front holds no key. It uses the
// standard library only, and the command containerservice-front runs it as a supervised
// process of its own that outlives our server and is adopted again, like the control
// planes it fronts.
package front

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Front accepts on its listeners and forwards to its backends.
type Front struct {
	listeners []net.Listener
	listen    []string // the bound addresses, for Status

	// dialCtx ends only when Run gives up waiting at shutdown, aborting dials under way.
	dialCtx     context.Context
	cancelDials context.CancelFunc
	// kick wakes the drain loop when drains change.
	kick chan struct{}

	mu       sync.Mutex
	cfg      Config       // with defaults; Listen as bound at New
	probes   *http.Client // trusts cfg.CAFile
	backends []*backend   // the config's, in order, then removed ones still holding connections
	next     int          // round-robin start among equally loaded backends
	unserved uint64
	// lastUnservedLog limits the log of connections nobody could take.
	lastUnservedLog time.Time
	started         bool
	probeCtx        context.Context // Run's; nil before Run and after it stopped probing
	forced          bool            // shutdown gave up waiting: no connection is attached any more

	acceptWG, probeWG, connWG sync.WaitGroup
}

// Status is a snapshot of a front.
type Status struct {
	// Listen are the addresses bound (with the ports picked for port 0).
	Listen []string `json:"listen"`
	// Backends are the config's backends in order, then removed backends that still hold
	// connections. A removed backend leaves this list with its last connection.
	Backends []BackendStatus `json:"backends"`
	// Unserved counts connections closed because no backend could take them.
	Unserved uint64 `json:"unserved"`
	// Generation is the Generation of the config in force.
	Generation int64 `json:"generation,omitempty"`
}

// BackendStatus is what the front knows of one backend.
type BackendStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Healthy: a probe succeeded, and fewer than two probes or dials in a row failed since.
	Healthy bool `json:"healthy"`
	// Draining: it gets no new connection (marked draining, or removed).
	Draining bool `json:"draining"`
	// Removed: the config no longer names it; it is listed while Active is not 0.
	Removed bool `json:"removed,omitempty"`
	// Active counts its open connections (and those being dialled).
	Active    int       `json:"active"`
	LastProbe time.Time `json:"lastProbe,omitzero"`
	// LastProbeError is why its last probe, or a dial since, failed; empty after a success.
	LastProbeError string `json:"lastProbeError,omitempty"`
}

// New checks the config, reads its CA and binds its listeners, so that a port already
// taken fails here and Status reports the ports picked. Run must follow: it releases the
// listeners when it returns.
func New(cfg Config) (*Front, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new front: %w", err)
	}
	pool, err := loadCA(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("new front: %w", err)
	}
	f := &Front{cfg: cfg.withDefaults(), probes: newProbeClient(pool), kick: make(chan struct{}, 1)}
	f.dialCtx, f.cancelDials = context.WithCancel(context.Background())
	for _, addr := range cfg.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, open := range f.listeners {
				open.Close()
			}
			return nil, fmt.Errorf("new front: listen on %s: %w", addr, err)
		}
		f.listeners = append(f.listeners, l)
		f.listen = append(f.listen, l.Addr().String())
	}
	f.mu.Lock()
	f.apply(cfg.Backends, time.Now())
	f.mu.Unlock()
	return f, nil
}

// Update replaces the backends and durations while the front runs, and reads the CA
// again. New backends are used from their first successful probe; backends marked
// draining or left out get no new connection and drain. The listeners stay as New bound
// them: a different Listen is logged and takes a restart of the front. On an error
// nothing changes.
func (f *Front) Update(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("update front: %w", err)
	}
	pool, err := loadCA(cfg.CAFile)
	if err != nil {
		return fmt.Errorf("update front: %w", err)
	}
	cfg = cfg.withDefaults()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(cfg.Listen, f.cfg.Listen) {
		klog.InfoS("The listen addresses changed; they take a restart of the front", "listening", f.listen, "configured", cfg.Listen)
		cfg.Listen = f.cfg.Listen
	}
	f.probes.CloseIdleConnections()
	f.cfg, f.probes = cfg, newProbeClient(pool)
	f.apply(cfg.Backends, time.Now())
	return nil
}

// Status reports the listeners and every backend.
func (f *Front) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Status{Listen: slices.Clone(f.listen), Unserved: f.unserved, Generation: f.cfg.Generation, Backends: make([]BackendStatus, 0, len(f.backends))}
	for _, b := range f.backends {
		s.Backends = append(s.Backends, BackendStatus{
			Name: b.name, Address: b.address, Healthy: b.healthy, Draining: b.draining, Removed: b.removed,
			Active: b.active, LastProbe: b.lastProbe, LastProbeError: b.lastErr,
		})
	}
	return s
}

// Run accepts and forwards until ctx ends. Then it closes the listeners, stops probing,
// waits up to ShutdownTimeout for the open connections to end, closes those left, and
// returns once every goroutine it started has. It may be called once.
func (f *Front) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return errors.New("front: Run called twice")
	}
	f.started = true
	probeCtx, stopProbes := context.WithCancel(context.Background())
	f.probeCtx = probeCtx
	for _, b := range f.backends {
		if !b.removed {
			f.startProbe(b)
		}
	}
	f.mu.Unlock()

	drainCtx, stopDrains := context.WithCancel(context.Background())
	drainDone := make(chan struct{})
	go func() {
		defer close(drainDone)
		f.drainLoop(drainCtx)
	}()
	for _, l := range f.listeners {
		f.acceptWG.Add(1)
		go f.accept(ctx, l)
	}
	klog.InfoS("Front accepting", "listen", f.listen)

	<-ctx.Done()
	for _, l := range f.listeners {
		l.Close()
	}
	f.acceptWG.Wait()
	f.mu.Lock()
	f.probeCtx = nil // Update starts no probe any more
	shutdownTimeout := time.Duration(f.cfg.ShutdownTimeout)
	f.mu.Unlock()
	stopProbes()
	f.probeWG.Wait()
	f.mu.Lock()
	f.probes.CloseIdleConnections()
	f.mu.Unlock()

	connsDone := make(chan struct{})
	go func() {
		f.connWG.Wait()
		close(connsDone)
	}()
	timer := time.NewTimer(shutdownTimeout)
	defer timer.Stop()
	select {
	case <-connsDone:
	case <-timer.C:
		f.mu.Lock()
		f.forced = true
		open := 0
		for _, b := range f.backends {
			open += len(b.conns)
			for c := range b.conns {
				c.close()
			}
		}
		f.mu.Unlock()
		klog.InfoS("Closed the connections still open at shutdown", "count", open, "waited", shutdownTimeout)
		f.cancelDials()
		<-connsDone
	}
	f.cancelDials()
	stopDrains()
	<-drainDone
	klog.InfoS("Front stopped", "listen", f.listen)
	return nil
}

// accept serves one listener until it is closed.
func (f *Front) accept(ctx context.Context, l net.Listener) {
	defer f.acceptWG.Done()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			// Out of file descriptors, say: wait a little rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			klog.ErrorS(err, "Accept failed; retrying", "listen", l.Addr().String(), "backoff", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		f.connWG.Add(1)
		go f.serve(c)
	}
}

// newProbeClient makes the client of the /readyz probes. A probe reuses the connection
// of the one before: a TLS handshake a second per backend was most of an idle front's
// CPU, and the kube-apiserver's. Nothing is missed by it: a kube-apiserver that stops
// answers /readyz with a failure while it stops, then closes the connection, and a dial
// of a client's connection that fails counts as a failed probe. An idle connection is
// kept no longer than probeIdle, so that one to a removed backend goes. Proxies from the
// environment are not used: the backends are local addresses.
func newProbeClient(ca *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: probeTimeout,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: probeTimeout,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     probeIdle,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
