package supervisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, file)
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

// readExe returns the executable of a process; one replaced on disk since it started (a
// rebuild) shows as "<path> (deleted)" and is named by its path.
func readExe(pid int) (string, error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return strings.TrimSuffix(exe, " (deleted)"), err
}

func readCmdline(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00"), nil
}

// find looks for a live process running exactly bin with args (the executable, and the
// whole command line, which names the component's own files): one this supervisor's
// predecessor started but died before recording. It returns its pid, or 0.
func find(bin string, args []string) int {
	want, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		argv, err := readCmdline(pid)
		if err != nil || len(argv) != len(args)+1 || !slices.Equal(argv[1:], args) {
			continue
		}
		if exe, err := readExe(pid); err == nil && exe == want {
			if st, err := readStat(pid); err == nil && st.state != 'Z' && st.state != 'X' {
				return pid
			}
		}
	}
	return 0
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

// stopPidfd sends SIGTERM through the pidfd, waits up to grace for the process to end,
// then sends SIGKILL and waits again.
func stopPidfd(fd int, grace time.Duration) error {
	if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	if exited(fd, grace) {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	if !exited(fd, killWait) {
		return fmt.Errorf("process did not end %s after SIGKILL", killWait)
	}
	return nil
}

// exited waits up to d for the process of the pidfd to end. A pidfd turns readable when
// its process exits, whether or not it is our child and whether or not it was reaped.
func exited(fd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		ms := int(min(left, time.Second) / time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		switch {
		case err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0:
			return true
		case err == nil && n > 0, err != nil && !errors.Is(err, syscall.EINTR):
			// Not a readable pidfd (an error state): do not spin.
			time.Sleep(min(left, 100*time.Millisecond))
		}
		if left == 0 {
			return false
		}
	}
}

type stat struct {
	state     byte
	startTime uint64
}

// readStat parses /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// itself hold spaces and parentheses, so fields are counted from the last ')'.
func readStat(pid int) (stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	return parseStat(data)
}

func parseStat(data []byte) (stat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return stat{}, errors.New("malformed stat: no command name")
	}
	// After ") ": field 3 (state) is rest[0], field 22 (starttime) is rest[19].
	rest := strings.Fields(string(data[i+1:]))
	if len(rest) < 20 || len(rest[0]) != 1 {
		return stat{}, errors.New("malformed stat: too few fields")
	}
	start, err := strconv.ParseUint(rest[19], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("malformed stat: starttime: %w", err)
	}
	return stat{state: rest[0][0], startTime: start}, nil
}

func bootID() (string, error) {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
