package supervisor

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// threads is the number of OS threads of this process.
func threads(t *testing.T) int {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads: in /proc/self/status")
	return 0
}

// TestAdoptedProcessesAreWatchedWithoutAThreadEach adopts many processes: watching them
// must not hold a thread each in a system call (which also kept the runtime's monitor
// awake: several % of a core for an idle server), yet each one's end is seen, and a
// release ends its watch.
func TestAdoptedProcessesAreWatchedWithoutAThreadEach(t *testing.T) {
	const n = 40
	before := threads(t)
	var procs []*Process
	var cmds []*exec.Cmd
	for i := range n {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		p := adopt("sleep"+strconv.Itoa(i), t.TempDir(), &Record{Pid: cmd.Process.Pid}, fd)
		t.Cleanup(p.Release)
		procs = append(procs, p)
	}
	// Long enough for each watcher to have entered its wait several times over.
	waitUntil(t, "watchers settled", func() bool { return threads(t) < before+n/2 })
	for i := range 3 {
		// Still the same after a while: no watcher took a thread in between.
		if got := threads(t); got >= before+n/2 {
			t.Fatalf("check %d: %d threads watching %d processes (%d before)", i, got, n, before)
		}
		if procs[0].Exited() {
			t.Fatal("a running process is reported ended")
		}
	}
	for i, cmd := range cmds[:n/2] {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		waitUntil(t, "the end of process "+strconv.Itoa(i)+" seen", procs[i].Exited)
	}
	for _, p := range procs[n/2:] {
		p.Release()
		if p.Exited() {
			t.Fatal("a released process is reported ended")
		}
	}
}
