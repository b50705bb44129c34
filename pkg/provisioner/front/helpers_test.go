package front

import (
	"bufio"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucloudstack/containerservice/pkg/leaktest"
)

// testBackend stands in for a kube-apiserver: TLS, /readyz answering 200 or 500 as
// told, /hit naming the backend, /stream writing a line every 10 ms until ended.
type testBackend struct {
	name  string
	srv   *httptest.Server
	ready atomic.Bool
	hits  atomic.Int64
	// endStreams ends every /stream response.
	endStreams chan struct{}
	endOnce    sync.Once
}

func newTestBackend(t *testing.T, name string, ready bool) *testBackend {
	t.Helper()
	b := &testBackend{name: name, endStreams: make(chan struct{})}
	b.ready.Store(ready)
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !b.ready.Load() {
			http.Error(w, "[-]etcd failed: not ready", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/hit", func(w http.ResponseWriter, _ *http.Request) {
		b.hits.Add(1)
		fmt.Fprint(w, b.name)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := fmt.Fprintf(w, "%s\n", b.name); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-b.endStreams:
				return
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	})
	b.srv = httptest.NewUnstartedServer(mux)
	b.srv.Listener = &sinkListener{Listener: b.srv.Listener}
	b.srv.StartTLS()
	t.Cleanup(func() {
		b.endStream()
		b.srv.Close()
	})
	return b
}

func (b *testBackend) addr() string { return b.srv.Listener.Addr().String() }

func (b *testBackend) endStream() { b.endOnce.Do(func() { close(b.endStreams) }) }

// sinkListener hands TLS connections on, and serves the others itself: it counts the
// bytes a client sends until it half-closes, answers "<count>\n" and closes. The front
// forwards TCP, so one address serves both.
type sinkListener struct{ net.Listener }

func (l *sinkListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		r := bufio.NewReader(c)
		first, err := r.Peek(1)
		if err == nil && first[0] == 0x16 { // a TLS handshake
			return &peekedConn{Conn: c, r: r}, nil
		}
		go func() {
			defer c.Close()
			n, _ := io.Copy(io.Discard, r)
			fmt.Fprintf(c, "%d\n", n)
		}()
	}
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// writeCA writes the certificate every httptest TLS server uses as the probes' CA.
func writeCA(t *testing.T, b *testBackend) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.crt")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.srv.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testConfig is a config listening on a free loopback port, probing every 20 ms.
func testConfig(caFile string, backends ...Backend) Config {
	return Config{Listen: []string{"127.0.0.1:0"}, CAFile: caFile, Backends: backends, ProbeInterval: Duration(20 * time.Millisecond)}
}

func backendOf(b *testBackend) Backend { return Backend{Name: b.name, Address: b.addr()} }

// startFront runs a front until the test ends (or stop is called), then checks that
// Run returned nil and left no goroutine behind.
func startFront(t *testing.T, cfg Config) (f *Front, addr string, stop func()) {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return 30 s after its context ended")
			}
			checkNoGoroutines(t)
		})
	}
	t.Cleanup(stop)
	return f, f.Status().Listen[0], stop
}

// checkNoGoroutines fails unless every goroutine running this package's code (tests
// aside) ends within a few seconds.
func checkNoGoroutines(t *testing.T) {
	t.Helper()
	leaktest.Check(t, 5*time.Second, "/pkg/provisioner/front/")
}

// waitUntil polls cond every 5 ms; it reports whether cond held before the timeout.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !waitUntil(10*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// backendStatus is the named backend's status (the first listed).
func backendStatus(f *Front, name string) (BackendStatus, bool) {
	for _, b := range f.Status().Backends {
		if b.Name == name {
			return b, true
		}
	}
	return BackendStatus{}, false
}

func healthy(f *Front, name string) func() bool {
	return func() bool { s, ok := backendStatus(f, name); return ok && s.Healthy }
}

// client makes clients through the front that trust the backends' certificate; each
// request opens a new connection, since the front balances connections. It has no
// overall timeout, which would end streams by itself: the tests' deadlines bound it.
func client(b *testBackend) *http.Client {
	tls := b.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tls, DisableKeepAlives: true, ResponseHeaderTimeout: 10 * time.Second}}
}

// hit asks /hit through the front and returns the backend that answered.
func hit(c *http.Client, addr string) (string, error) {
	resp, err := c.Get("https://" + addr + "/hit")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("answered %d: %s", resp.StatusCode, body)
	}
	return string(body), nil
}

// stream is a /stream response read line by line through the front.
type stream struct {
	lines atomic.Int64
	done  chan struct{}
	err   error // once done: nil when the response ended cleanly
}

func openStream(t *testing.T, c *http.Client, addr string) *stream {
	t.Helper()
	resp, err := c.Get("https://" + addr + "/stream")
	if err != nil {
		t.Fatalf("open a stream: %v", err)
	}
	s := &stream{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines.Add(1)
		}
		s.err = sc.Err() // nil only when the chunked response ended properly
	}()
	return s
}

// ended waits for the stream's end and returns its error.
func (s *stream) ended(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(within):
		t.Fatalf("the stream did not end within %v", within)
		return errors.New("unreachable")
	}
}
