package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// frontWith serves the proxy for path with still deciding whether the caller may go on.
func frontWith(t *testing.T, p *Proxy, path string, still func() bool) *httptest.Server {
	t.Helper()
	target, _ := TargetFor(cluster(), nil, admin, "")
	h, err := p.Handler(context.Background(), cluster(), target, path, responder{}, still)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// TestAWatchEndsWhenAccessGoes: a watch that was allowed when it started ends within
// seconds of its caller losing access; one whose caller keeps access goes on.
func TestAWatchEndsWhenAccessGoes(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "event %d\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	var allowed atomic.Bool
	allowed.Store(true)
	s := frontWith(t, New(newAccess(t, b)), "/api/v1/pods", allowed.Load)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(s.URL + "/?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	deadline := time.Now().Add(2*revalidateEvery + time.Second)
	for time.Now().Before(deadline) { // still allowed: events keep coming past a revalidation
		if _, err := lines.ReadString('\n'); err != nil {
			t.Fatalf("the watch of a caller who kept access ended: %v", err)
		}
	}
	allowed.Store(false)
	revoked := time.Now()
	for {
		if _, err := lines.ReadString('\n'); err != nil {
			break
		}
		if time.Since(revoked) > 3*revalidateEvery {
			t.Fatal("the watch goes on after its caller lost access")
		}
	}
}

// TestAnUpgradedSessionEndsWhenAccessGoes: an exec or port-forward (an upgraded
// connection) is closed once its caller loses access.
func TestAnUpgradedSessionEndsWhenAccessGoes(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
		rw.Flush()
		_, _ = io.Copy(conn, rw) // echo
	})
	b.Close() // restarted without HTTP/2: an upgrade is HTTP/1.1
	b.Server = httptest.NewUnstartedServer(b.Config.Handler)
	b.StartTLS()
	var allowed atomic.Bool
	allowed.Store(true)
	s := frontWith(t, New(newAccess(t, b)), "/api/v1/namespaces/default/pods/app/exec", allowed.Load)
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /?command=sh HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n", s.Listener.Addr())
	r := bufio.NewReader(conn)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprintln(conn, "hello")
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "hello" {
		t.Fatalf("echo: %q %v", line, err)
	}
	allowed.Store(false)
	revoked := time.Now()
	_ = conn.SetDeadline(time.Now().Add(3 * revalidateEvery))
	if _, err := r.ReadString('\n'); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the session stayed open after its caller lost access: %v", err)
	}
	t.Logf("closed %v after the caller lost access", time.Since(revoked))
}
