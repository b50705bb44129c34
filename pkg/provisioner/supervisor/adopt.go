package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
)

// Outcome says what Resume found of a component.
type Outcome int

const (
	// Started: nothing of it ran, so it was started.
	Started Outcome = iota
	// Adopted: the recorded process runs the command asked for and is supervised again.
	Adopted
	// Reconfigured: the recorded process ran another command (an earlier configuration),
	// so it was stopped and the new command started.
	Reconfigured
)

func (o Outcome) String() string {
	return [...]string{"started", "adopted", "reconfigured"}[o]
}

// Resume supervises a component whose process may still run from an earlier supervisor
// (a restarted server): a recorded process that is alive, proven to be the recorded one
// (pid, start time, boot, executable, command line, the record's own path) and runs the
// command asked for is adopted; one that runs an earlier command is stopped and started
// anew. Without a usable record, a live process running exactly the command (started by
// a supervisor that died before recording it) is adopted; otherwise the component is
// started. A process is signalled only when proven to be the component's.
func Resume(c Component) (*Supervised, Outcome, error) {
	if c.StateFile == "" {
		return Supervise(c), Started, nil
	}
	r, err := ReadRecord(c.StateFile)
	if err != nil {
		if !errors.Is(err, ErrNotRunning) {
			klog.InfoS("Not using the record of a component", "component", c.Name, "reason", err)
		}
		return resumeUnrecorded(c)
	}
	fd, err := r.open()
	if err != nil {
		if err != ErrNotRunning { //nolint:errorlint // a plain exit is not worth a log line; anything else is
			klog.InfoS("Not adopting the recorded process", "component", c.Name, "pid", r.Pid, "reason", err)
		}
		return resumeUnrecorded(c)
	}
	if !r.Same(c.Binary, c.Args, c.Env) {
		klog.InfoS("Component runs an earlier configuration; restarting it", "component", c.Name, "pid", r.Pid)
		err := stopPidfd(fd, c.grace())
		unix.Close(fd)
		if err != nil {
			return nil, Reconfigured, fmt.Errorf("stop the earlier %s (pid %d): %w", c.Name, r.Pid, err)
		}
		return Supervise(c), Reconfigured, nil
	}
	return adoptRecorded(c, r, fd), Adopted, nil
}

// resumeUnrecorded adopts a live process running exactly the component's command, or
// starts the component.
func resumeUnrecorded(c Component) (*Supervised, Outcome, error) {
	pid := find(c.Binary, c.Args)
	if pid == 0 {
		return Supervise(c), Started, nil
	}
	r, err := newRecord(c.StateFile, pid, c.Binary, c.Args, c.Env)
	if err != nil {
		return nil, Started, fmt.Errorf("record the running %s (pid %d): %w", c.Name, pid, err)
	}
	fd, err := r.open()
	if err != nil {
		return nil, Started, fmt.Errorf("adopt the running %s (pid %d): %w", c.Name, pid, err)
	}
	if err := writeRecord(c.StateFile, r); err != nil {
		unix.Close(fd)
		return nil, Started, fmt.Errorf("record the running %s (pid %d): %w", c.Name, pid, err)
	}
	klog.InfoS("Found an unrecorded running component; adopting it", "component", c.Name, "pid", pid)
	return adoptRecorded(c, r, fd), Adopted, nil
}

func adoptRecorded(c Component, r *Record, fd int) *Supervised {
	p := adopt(c.Name, c.LogDir, r, fd)
	p.grace = c.grace()
	klog.InfoS("Adopted running component", "component", c.Name, "pid", r.Pid)
	return run(c, p)
}

// adopt watches a process that an earlier supervisor started and r records; the caller has
// proven its identity and passes the pidfd, which the Process then owns.
func adopt(name, logDir string, r *Record, pidfd int) *Process {
	p := &Process{name: name, pid: r.Pid, pidfd: pidfd, logFile: filepath.Join(logDir, name+".log"),
		done: make(chan struct{}), release: make(chan struct{}), watching: make(chan struct{}), grace: DefaultStopGrace}
	go func() {
		defer close(p.watching)
		if waitExit(pidfd, p.release) {
			p.err = errors.New("exit status unknown (adopted from an earlier server)")
			close(p.done)
		}
	}()
	return p
}

// Record is what a supervisor writes about a process it started, so that a later
// supervisor (in a restarted server) can find it again and prove it is the same process:
// the pid alone could have been reused by anything since.
type Record struct {
	// File is the record's own path: a record copied elsewhere (a cluster directory
	// copied under another name) names another file, and is not trusted there.
	File string `json:"file"`
	// Pid is the process id.
	Pid int `json:"pid"`
	// StartTime is field 22 of /proc/<pid>/stat: when the process started, in clock ticks
	// since boot. A reused pid has another start time.
	StartTime uint64 `json:"startTime"`
	// BootID is the kernel's boot id: after a reboot every pid and start time means nothing.
	BootID string `json:"bootID"`
	// Exe is the executable the process runs, as /proc/<pid>/exe named it at start
	// (symbolic links resolved), so that repointing a link later changes nothing.
	Exe string `json:"exe"`
	// Binary, Args and Env are the command it was started with, to tell whether it runs
	// what is asked for now or an earlier configuration.
	Binary string   `json:"binary"`
	Args   []string `json:"args"`
	Env    []string `json:"env,omitempty"`
}

var (
	// ErrNotRunning says the recorded process is gone: it exited, or the record is of
	// another boot, or its pid now belongs to another process (another start time).
	ErrNotRunning = errors.New("not running")
	// ErrNotOurs says a live process has the recorded pid and start time but does not
	// run what the record says, or the record was copied from elsewhere: it is neither
	// adopted nor signalled, and nothing is started in its place.
	ErrNotOurs = errors.New("the recorded process does not match its record")
)

// ReadRecord reads a record file; a missing file is ErrNotRunning.
func ReadRecord(file string) (*Record, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotRunning
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if r.Pid <= 1 {
		return nil, fmt.Errorf("read %s: invalid pid %d", file, r.Pid)
	}
	if abs, _ := filepath.Abs(file); r.File != abs {
		return nil, fmt.Errorf("%w: %s was written as %s", ErrNotOurs, file, r.File)
	}
	return &r, nil
}

// writeRecord replaces the record file atomically and durably: a crash leaves the old one
// or the new.
func writeRecord(file string, r *Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(file, data, 0o600)
}

// newRecord describes a running process this supervisor started or found, for file.
func newRecord(file string, pid int, bin string, args, env []string) (*Record, error) {
	st, err := readStat(pid)
	if err != nil {
		return nil, err
	}
	boot, err := bootID()
	if err != nil {
		return nil, err
	}
	exe, err := readExe(pid)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	return &Record{File: abs, Pid: pid, StartTime: st.startTime, BootID: boot, Exe: exe, Binary: bin, Args: args, Env: env}, nil
}

// Same reports whether the record describes the same command as c.
func (r *Record) Same(bin string, args, env []string) bool {
	return r.Binary == bin && slices.Equal(r.Args, args) && slices.Equal(r.Env, env)
}

// open proves that the recorded process is alive and is the one recorded, and returns a
// pidfd for it: signals sent through the pidfd can only reach that process, however long
// the caller waits. The caller closes the pidfd.
func (r *Record) open() (int, error) {
	boot, err := bootID()
	if err != nil {
		return -1, err
	}
	if boot != r.BootID {
		return -1, ErrNotRunning
	}
	fd, err := unix.PidfdOpen(r.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return -1, ErrNotRunning
	}
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", r.Pid, err)
	}
	// Checked after opening the pidfd: if the pid was reused before, the start time differs;
	// once the pidfd is open it cannot be reused under us.
	if err := r.verify(); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// verify compares /proc with the record: start time and state first (another start time
// is another process: ErrNotRunning), then executable and command line (ErrNotOurs).
func (r *Record) verify() error {
	st, err := readStat(r.Pid)
	if errors.Is(err, os.ErrNotExist) || (err == nil && (st.startTime != r.StartTime || st.state == 'Z' || st.state == 'X')) {
		return ErrNotRunning
	}
	if err != nil {
		return fmt.Errorf("pid %d: %w", r.Pid, err)
	}
	exe, err := readExe(r.Pid)
	if err != nil {
		return fmt.Errorf("pid %d: %w", r.Pid, err)
	}
	if exe != r.Exe {
		return fmt.Errorf("%w: pid %d runs %s, not %s", ErrNotOurs, r.Pid, exe, r.Exe)
	}
	argv, err := readCmdline(r.Pid)
	if err != nil {
		return fmt.Errorf("pid %d: %w", r.Pid, err)
	}
	if len(argv) == 0 || !slices.Equal(argv[1:], r.Args) {
		return fmt.Errorf("%w: pid %d has another command line", ErrNotOurs, r.Pid)
	}
	return nil
}

// openRecorded reads a record and opens its process: a pidfd when it runs and is the
// recorded one, ErrNotRunning when it is proven gone (or there is no record), another
// error when that cannot be told.
func openRecorded(file string) (int, error) {
	r, err := ReadRecord(file)
	if err != nil {
		return -1, err
	}
	return r.open()
}

// Alive reports whether the process of a record file runs and is the recorded one.
func Alive(file string) bool {
	fd, err := openRecorded(file)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// Running reports whether the record's process may still run: false only when it is
// proven gone (or there is no record). A record that cannot be checked, or that does
// not match a live process, counts as running, so that nothing is deleted under it.
func Running(file string) bool {
	fd, err := openRecorded(file)
	if err == nil {
		unix.Close(fd)
	}
	return !errors.Is(err, ErrNotRunning)
}

// StopRecorded stops the process of a record file, if it runs and is the recorded one:
// SIGTERM, then SIGKILL after grace. It returns once the process has ended. A record that
// does not match its process is an error: nothing is signalled.
func StopRecorded(file string, grace time.Duration) error {
	fd, err := openRecorded(file)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return stopPidfd(fd, grace)
}

// killWait bounds the wait for a process to end after SIGKILL (a process stuck in an
// uninterruptible disk wait never does).
const killWait = 30 * time.Second
