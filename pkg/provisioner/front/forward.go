package front

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// unservedLogEvery limits the log of connections no backend could take: a cluster
// without a ready kube-apiserver would otherwise log every client's every retry.
const unservedLogEvery = 10 * time.Second

// conn is one forwarded connection: the client's and the backend's side.
type conn struct {
	client, server net.Conn
	once           sync.Once
}

// close closes both sides; it reports whether this call did.
func (c *conn) close() bool {
	closed := false
	c.once.Do(func() {
		c.client.Close()
		c.server.Close()
		closed = true
	})
	return closed
}

// serve forwards one accepted connection: to the least loaded usable backend, or, when
// its dial fails, the next one; when none takes it the client's connection is closed.
func (f *Front) serve(client net.Conn) {
	defer f.connWG.Done()
	tried := map[*backend]bool{}
	for {
		b, fallback, dialTimeout := f.pick(tried)
		if b == nil {
			// Counted before the close: whoever sees the close may read the count.
			f.unservedConn(client, len(tried))
			client.Close()
			return
		}
		tried[b] = true
		d := net.Dialer{Timeout: dialTimeout}
		server, err := d.DialContext(f.dialCtx, "tcp", b.address)
		if err != nil {
			f.dialFailed(b, err)
			continue
		}
		c := &conn{client: client, server: server}
		if !f.attach(b, c, fallback) {
			server.Close()
			f.release(b, nil)
			continue
		}
		c.pipe()
		f.release(b, c)
		return
	}
}

// pick reserves a usable backend not tried yet: the one with the fewest active
// connections, ties going round-robin. When none is usable, a healthy backend that is
// draining (not removed) takes the connection rather than nobody: draining is a plan to
// stop it, and its replacement has failed meanwhile; fallback says it is one. It
// returns nil when there is none.
func (f *Front) pick(tried map[*backend]bool) (b *backend, fallback bool, dialTimeout time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.forced {
		return nil, false, 0
	}
	var candidates, fallbacks []*backend
	for _, b := range f.backends {
		switch {
		case tried[b]:
		case b.usable():
			candidates = append(candidates, b)
		case b.healthy && b.draining && !b.removed:
			fallbacks = append(fallbacks, b)
		}
	}
	if len(candidates) == 0 {
		candidates, fallback = fallbacks, true
	}
	if len(candidates) == 0 {
		return nil, false, 0
	}
	start := f.next % len(candidates)
	f.next++
	best := candidates[start]
	for i := 1; i < len(candidates); i++ {
		if b := candidates[(start+i)%len(candidates)]; b.active < best.active {
			best = b
		}
	}
	best.active++
	return best, fallback, time.Duration(f.cfg.DialTimeout)
}

// dialFailed gives back a reservation whose dial failed. A failed dial counts as a
// failed probe, so that a backend refusing connections leaves the rotation without
// waiting for its next probe; dials aborted at shutdown do not count.
func (f *Front) dialFailed(b *backend, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dialCtx.Err() == nil {
		f.failed(b, fmt.Errorf("dial: %w", err))
	}
	f.releaseLocked(b, nil)
}

// attach records an established connection with its backend, unless the backend began
// to drain while it was dialled (a fallback was draining already: it must not have been
// removed since) or the front gave up at shutdown: nothing was forwarded yet, so the
// client can still be served by another backend.
func (f *Front) attach(b *backend, c *conn, fallback bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.forced || (b.draining && !fallback) || b.removed {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

// release gives back a backend's reservation, and its connection if it had one.
func (f *Front) release(b *backend, c *conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releaseLocked(b, c)
}

func (f *Front) releaseLocked(b *backend, c *conn) {
	b.active--
	if c != nil {
		delete(b.conns, c)
	}
	if !b.removed || b.active > 0 {
		return
	}
	for i, x := range f.backends {
		if x == b {
			f.backends = append(f.backends[:i], f.backends[i+1:]...)
			klog.InfoS("Removed backend drained", "backend", b.name, "address", b.address)
			return
		}
	}
}

// unservedConn counts a connection closed for want of a backend.
func (f *Front) unservedConn(client net.Conn, tried int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unserved++
	if now := time.Now(); now.Sub(f.lastUnservedLog) >= unservedLogEvery {
		f.lastUnservedLog = now
		klog.InfoS("No backend could take a connection; closed it", "client", client.RemoteAddr().String(), "backendsTried", tried, "unservedSoFar", f.unserved)
	}
}

// pipe copies both ways until both directions ended. The end of one direction (EOF) is
// passed on as a half-close, since a client may still read the response to a request it
// has finished sending; a failed read or write (a reset, a close by the drain timeout)
// closes both sides at once. A half-closed connection lives until its other direction
// ends too, as TCP intends; a draining backend's are bounded by DrainTimeout.
func (c *conn) pipe() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.half(c.server, c.client)
	}()
	c.half(c.client, c.server)
	<-done
	c.close()
}

// half copies src to dst and, at src's EOF, closes dst for writing.
func (c *conn) half(dst, src net.Conn) {
	// io.Copy between two TCP connections splices on Linux: the bytes stay in the kernel.
	if _, err := io.Copy(dst, src); err != nil {
		c.close()
		return
	}
	cw, ok := dst.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		c.close()
	}
}
