package supervisor

import (
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestACrashedProcessIsRestartedAndReported(t *testing.T) {
	var exits atomic.Int32
	s := Supervise(Component{Name: "sleeper", Binary: "/bin/sleep", Args: []string{"600"}, LogDir: t.TempDir(),
		OnExit: func() { exits.Add(1) }})
	defer s.Stop()
	waitUntil(t, "started", s.Running)
	first := s.Pid()

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "restarted", func() bool { return s.Pid() != 0 && s.Pid() != first })
	if n, last := s.Restarts(); n != 1 || last == nil {
		t.Errorf("restarts %d, last error %v; want 1 and the exit", n, last)
	}
	if exits.Load() != 1 {
		t.Errorf("OnExit called %d times, want 1", exits.Load())
	}

	// A restart that was asked for is not a crash.
	second := s.Pid()
	s.Restart()
	waitUntil(t, "restarted on request", func() bool { return s.Pid() != 0 && s.Pid() != second })
	if n, _ := s.Restarts(); n != 1 || exits.Load() != 1 {
		t.Errorf("an asked-for restart counted as a crash: restarts %d, OnExit %d", n, exits.Load())
	}
}

func TestStopEndsTheProcessAndMayBeCalledTwice(t *testing.T) {
	s := Supervise(Component{Name: "sleeper", Binary: "/bin/sleep", Args: []string{"600"}, LogDir: t.TempDir()})
	waitUntil(t, "started", s.Running)
	pid := s.Pid()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(s.Stop)
	}
	wg.Wait()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("process %d still alive after Stop", pid)
	}
	if s.Running() {
		t.Error("still running after Stop")
	}
}

func TestAMissingBinaryIsRetriedNotFatal(t *testing.T) {
	s := Supervise(Component{Name: "nothing", Binary: "/nonexistent/binary", LogDir: t.TempDir()})
	defer s.Stop()
	waitUntil(t, "the failed start is reported", func() bool { n, err := s.Restarts(); return n >= 1 && err != nil })
	if s.Running() {
		t.Error("a missing binary is running")
	}
}
