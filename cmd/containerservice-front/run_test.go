package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucloudstack/containerservice/pkg/leaktest"
	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
	"github.com/ucloudstack/containerservice/pkg/provisioner/front"
)

// backend is a stand-in kube-apiserver: TLS, /readyz ready, /hit naming it.
func backend(t *testing.T, name string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/hit", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, name) })
	s := httptest.NewTLSServer(mux)
	t.Cleanup(s.Close)
	return s
}

func writeConfig(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func configJSON(t *testing.T, ca string, backends ...front.Backend) []byte {
	t.Helper()
	data, err := json.Marshal(front.Config{Listen: []string{"127.0.0.1:0"}, CAFile: ca, Backends: backends, ProbeInterval: front.Duration(20 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// status reads the status file; zero until it exists.
func status(path string) front.StatusFile {
	s, _ := front.ReadStatusFile(path)
	return s
}

func healthy(s front.StatusFile, name string) bool {
	for _, b := range s.Backends {
		if b.Name == name && b.Healthy {
			return true
		}
	}
	return false
}

func TestRunReloadsConfigAndWritesStatus(t *testing.T) {
	dir := t.TempDir()
	a, b := backend(t, "a"), backend(t, "b")
	ca := filepath.Join(dir, "ca.crt")
	writeConfig(t, ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Certificate().Raw}))
	config, statusFile := filepath.Join(dir, "front.json"), filepath.Join(dir, "status.json")
	writeConfig(t, config, configJSON(t, ca, front.Backend{Name: "a", Address: a.Listener.Addr().String()}))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{config: config, status: statusFile, tick: 20 * time.Millisecond})
	}()
	waitFor(t, "a healthy in the status file", func() bool { return healthy(status(statusFile), "a") })
	s := status(statusFile)
	if s.PID != os.Getpid() || time.Since(s.Time) > 5*time.Second || len(s.Listen) != 1 || s.ConfigError != "" {
		t.Fatalf("status %+v: want this process, recent, one listener, no config error", s)
	}
	addr := s.Listen[0]
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: a.Client().Transport.(*http.Transport).TLSClientConfig.Clone(), DisableKeepAlives: true}}
	get := func() (string, error) {
		resp, err := cl.Get("https://" + addr + "/hit")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	if name, err := get(); err != nil || name != "a" {
		t.Fatalf("through the front: %q, %v: want a", name, err)
	}

	// A new backend in the file is picked up.
	both := configJSON(t, ca, front.Backend{Name: "a", Address: a.Listener.Addr().String()}, front.Backend{Name: "b", Address: b.Listener.Addr().String()})
	writeConfig(t, config, both)
	waitFor(t, "b healthy in the status file", func() bool { return healthy(status(statusFile), "b") })

	// A config that does not parse is reported and ignored: a and b still serve.
	writeConfig(t, config, []byte(`{"listen": [`))
	waitFor(t, "the config error in the status file", func() bool { return status(statusFile).ConfigError != "" })
	if s := status(statusFile); !healthy(s, "a") || !healthy(s, "b") || !strings.Contains(s.ConfigError, "decode") {
		t.Errorf("status after a bad config: %+v: want a and b healthy still and the decoding error", s)
	}
	seen := map[string]bool{}
	for range 10 {
		name, err := get()
		if err != nil {
			t.Fatalf("through the front after a bad config: %v", err)
		}
		seen[name] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("10 requests after a bad config reached %v: want a and b", seen)
	}

	// A good config again: the error clears, a leaves.
	writeConfig(t, config, configJSON(t, ca, front.Backend{Name: "b", Address: b.Listener.Addr().String()}))
	waitFor(t, "a gone, no config error", func() bool {
		s := status(statusFile)
		return s.ConfigError == "" && len(s.Backends) == 1 && s.Backends[0].Name == "b"
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	checkNoGoroutines(t)
}

func TestRunRefusesABadFirstConfig(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "front.json")
	writeConfig(t, config, []byte(`{"listen": ["127.0.0.1:0"]}`))
	for name, o := range map[string]options{
		"no flags":        {},
		"missing file":    {config: filepath.Join(dir, "missing.json"), status: filepath.Join(dir, "s.json")},
		"invalid content": {config: config, status: filepath.Join(dir, "s.json")},
	} {
		if err := run(context.Background(), o); err == nil {
			t.Errorf("%s: run succeeded", name)
		}
	}
}

// checkNoGoroutines fails unless the goroutines running the command's or the front's
// code (tests aside) end within a few seconds.
func checkNoGoroutines(t *testing.T) {
	t.Helper()
	leaktest.Check(t, 5*time.Second, "/pkg/provisioner/front/", "/cmd/containerservice-front/")
}
