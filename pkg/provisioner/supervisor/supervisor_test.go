package supervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

func sleeper(t *testing.T, dir string) Component {
	return Component{Name: "sleeper", Binary: "/bin/sleep", Args: []string{"600"}, LogDir: dir, StateFile: filepath.Join(dir, "run", "sleeper.json"),
		StopGrace: 2 * time.Second}
}

// TestADetachedComponentIsAdoptedWithItsPid is a restart of the server: the supervisor
// lets go, the process runs on, and the next supervisor adopts it without a restart, then
// keeps restarting it when it dies.
func TestADetachedComponentIsAdoptedWithItsPid(t *testing.T) {
	c := sleeper(t, t.TempDir())
	first := Supervise(c)
	waitUntil(t, "started", first.Running)
	pid := first.Pid()
	first.Detach()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the process did not outlive its supervisor: %v", err)
	}
	if !Alive(c.StateFile) {
		t.Fatal("the record does not show the running process")
	}

	second, outcome, err := Resume(c)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop()
	if outcome != Adopted || second.Pid() != pid {
		t.Fatalf("resume: %s with pid %d, want adopted with pid %d", outcome, second.Pid(), pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "an adopted process that dies is restarted", func() bool { return second.Pid() != 0 && second.Pid() != pid })
	if n, last := second.Restarts(); n != 1 || last == nil || !strings.Contains(last.Error(), "adopted") {
		t.Errorf("restarts %d, last %v; want 1 and an exit of an adopted process", n, last)
	}
}

// TestAForeignProcessIsNeverAdopted forges records pointing at a process this supervisor
// did not start (the pid reused by someone else): it must be left alone and the component
// started anew.
func TestAForeignProcessIsNeverAdopted(t *testing.T) {
	dir := t.TempDir()
	c := sleeper(t, dir)
	foreign := exec.Command("/bin/sleep", "600")
	if err := foreign.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = foreign.Process.Kill(); _ = foreign.Wait() }()
	real, err := newRecord(c.StateFile, foreign.Process.Pid, "/bin/sleep", []string{"600"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	forgeries := map[string]func(r *Record){
		"another start time":   func(r *Record) { r.StartTime-- },
		"another boot":         func(r *Record) { r.BootID = "00000000-0000-0000-0000-000000000000" },
		"another executable":   func(r *Record) { r.Exe = "/bin/true" },
		"another command line": func(r *Record) { r.Args = []string{"601"} },
		"written for another":  func(r *Record) { r.File = "/elsewhere/run/sleeper.json" },
	}
	for name, forge := range forgeries {
		t.Run(name, func(t *testing.T) {
			r := *real
			forge(&r)
			if err := writeRecord(c.StateFile, &r); err != nil {
				t.Fatal(err)
			}
			if Alive(c.StateFile) {
				t.Error("a forged record counts as alive")
			}
			_ = StopRecorded(c.StateFile, time.Second)
			// The foreign process runs other arguments than the component ("600" vs the
			// component's "600" in another session): here it must not be found either.
			s, outcome, err := Resume(Component{Name: c.Name, Binary: c.Binary, Args: []string{"599"}, LogDir: c.LogDir, StateFile: c.StateFile})
			if err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "started", s.Running)
			if outcome != Started || s.Pid() == foreign.Process.Pid {
				t.Errorf("resume: %s with pid %d; want a new process", outcome, s.Pid())
			}
			s.Stop()
			if err := syscall.Kill(foreign.Process.Pid, 0); err != nil {
				t.Errorf("the foreign process was harmed: %v", err)
			}
		})
	}
}

// TestAnEarlierConfigurationIsRestarted: a recorded process running other arguments (a
// server upgrade changed them) is replaced.
func TestAnEarlierConfigurationIsRestarted(t *testing.T) {
	c := sleeper(t, t.TempDir())
	first := Supervise(c)
	waitUntil(t, "started", first.Running)
	pid := first.Pid()
	first.Detach()

	c.Args = []string{"601"}
	s, outcome, err := Resume(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	waitUntil(t, "started", s.Running)
	if outcome != Reconfigured || s.Pid() == pid {
		t.Errorf("resume: %s with pid %d, want reconfigured with a new pid", outcome, s.Pid())
	}
	waitUntil(t, "the earlier process ends", func() bool { return syscall.Kill(pid, 0) != nil || zombie(pid) })
}

func zombie(pid int) bool {
	st, err := readStat(pid)
	return err != nil || st.state == 'Z'
}

func TestStopRecordedStopsOnlyTheRecordedProcess(t *testing.T) {
	c := sleeper(t, t.TempDir())
	s := Supervise(c)
	waitUntil(t, "started", s.Running)
	pid := s.Pid()
	s.Detach()
	if err := StopRecorded(c.StateFile, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if Alive(c.StateFile) {
		t.Error("still alive after StopRecorded")
	}
	waitUntil(t, "stopped", func() bool { return zombie(pid) })
	if err := StopRecorded(filepath.Join(t.TempDir(), "none.json"), time.Second); err != nil {
		t.Errorf("no record: %v", err)
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 12 0 987654 123456 789"
	st, err := parseStat([]byte(line))
	if err != nil || st.state != 'S' || st.startTime != 987654 {
		t.Errorf("parse: %+v %v", st, err)
	}
	if _, err := parseStat([]byte("4242 (x) S 1")); err == nil {
		t.Error("a truncated stat parsed")
	}
}

// TestARepointedBinaryLinkStillAdopts: an upgrade through a symlink (current -> v2)
// changes nothing for processes already running the old target.
func TestARepointedBinaryLinkStillAdopts(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "current")
	if err := os.Symlink("/bin/sleep", link); err != nil {
		t.Fatal(err)
	}
	c := Component{Name: "sleeper", Binary: link, Args: []string{"600"}, LogDir: dir, StateFile: filepath.Join(dir, "run", "sleeper.json"), StopGrace: 2 * time.Second}
	first := Supervise(c)
	waitUntil(t, "started", first.Running)
	pid := first.Pid()
	first.Detach()
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/true", link); err != nil {
		t.Fatal(err)
	}
	s, outcome, err := Resume(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if outcome != Adopted || s.Pid() != pid {
		t.Errorf("resume after repointing the link: %s with pid %d, want adopted %d", outcome, s.Pid(), pid)
	}
}

// TestACopiedRecordSignalsNothing: a cluster directory copied under another name carries
// the other's records; they must not stop or adopt the other's processes.
func TestACopiedRecordSignalsNothing(t *testing.T) {
	a, b := sleeper(t, t.TempDir()), sleeper(t, t.TempDir())
	b.Args = []string{"601"}
	first := Supervise(a)
	waitUntil(t, "started", first.Running)
	pid := first.Pid()
	defer first.Stop()
	data, err := os.ReadFile(a.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(b.StateFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.StateFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := StopRecorded(b.StateFile, time.Second); err == nil {
		t.Error("stopping through a copied record was not refused")
	}
	s, outcome, err := Resume(b)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	waitUntil(t, "b started", s.Running)
	if outcome != Started || s.Pid() == pid {
		t.Errorf("b: %s with pid %d, want its own process", outcome, s.Pid())
	}
	if syscall.Kill(pid, 0) != nil || zombie(pid) {
		t.Error("a's process was harmed through b's copied record")
	}
}

// TestAnUnrecordedProcessIsFound: a server that died between starting a component and
// recording it left a process running exactly the component's command; the next one
// adopts it instead of starting a second copy.
func TestAnUnrecordedProcessIsFound(t *testing.T) {
	c := sleeper(t, t.TempDir())
	c.Args = []string{"600.123"} // a command line no other test runs
	orphan := exec.Command(c.Binary, c.Args...)
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = orphan.Process.Kill(); _ = orphan.Wait() }()
	s, outcome, err := Resume(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if outcome != Adopted || s.Pid() != orphan.Process.Pid {
		t.Errorf("resume: %s with pid %d, want the unrecorded pid %d adopted", outcome, s.Pid(), orphan.Process.Pid)
	}
	if !Alive(c.StateFile) {
		t.Error("the adopted process was not recorded")
	}
}
