package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// revalidateEvery is how often the proxy asks again whether each long-running session's
// caller may still enter its cluster.
const revalidateEvery = 2 * time.Second

// sessions are the proxied requests that last (watches, logs -f, exec, attach,
// port-forward). Access is decided when a request starts and a session can last hours,
// so each is asked again every revalidateEvery whether its caller may still enter, and
// ended when not: an administrator or member taken out loses the streams they hold too.
type sessions struct {
	mu    sync.Mutex
	all   map[*session]struct{}
	start sync.Once
}

// session is one long-running request.
type session struct {
	still  func() bool
	cancel context.CancelFunc

	mu     sync.Mutex
	conn   net.Conn // the caller's connection once an upgrade took it over
	closed bool
}

// track registers a request whose caller still says whether they may go on; the returned
// context and writer end with the session, and done removes it.
func (s *sessions) track(ctx context.Context, w http.ResponseWriter, still func() bool) (context.Context, http.ResponseWriter, func()) {
	s.start.Do(func() { go s.revalidate() })
	ctx, cancel := context.WithCancel(ctx)
	sess := &session{still: still, cancel: cancel}
	s.mu.Lock()
	if s.all == nil {
		s.all = map[*session]struct{}{}
	}
	s.all[sess] = struct{}{}
	s.mu.Unlock()
	return ctx, &sessionWriter{ResponseWriter: w, sess: sess}, func() {
		s.mu.Lock()
		delete(s.all, sess)
		s.mu.Unlock()
		cancel()
	}
}

// revalidate ends, every revalidateEvery, the sessions whose caller may no longer enter.
// It runs as long as the process: sessions come and go with it.
func (s *sessions) revalidate() {
	for range time.Tick(revalidateEvery) {
		s.mu.Lock()
		current := make([]*session, 0, len(s.all))
		for sess := range s.all {
			current = append(current, sess)
		}
		s.mu.Unlock()
		for _, sess := range current {
			if !sess.still() {
				sess.end()
			}
		}
	}
}

// end stops the request: its context (a stream) and the caller's connection (an upgrade).
func (sess *session) end() {
	sess.cancel()
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.closed = true
	if sess.conn != nil {
		_ = sess.conn.Close()
	}
}

// sessionWriter records the connection an upgrade hijacks, so that ending the session
// closes it.
type sessionWriter struct {
	http.ResponseWriter
	sess *session
}

func (w *sessionWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.sess.mu.Lock()
	defer w.sess.mu.Unlock()
	w.sess.conn = conn
	if w.sess.closed {
		_ = conn.Close()
	}
	return conn, rw, nil
}

func (w *sessionWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
