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
	// Pid is the process id.
	Pid int `json:"pid"`
	// StartTime is field 22 of /proc/<pid>/stat: when the process started, in clock ticks
	// since boot. A reused pid has another start time.
	StartTime uint64 `json:"startTime"`
	// BootID is the kernel's boot id: after a reboot every pid and start time means nothing.
	BootID string `json:"bootID"`
	// Binary, Args and Env are the command it runs, to tell whether it runs what is asked
	// for now or an earlier configuration.
	Binary string   `json:"binary"`
	Args   []string `json:"args"`
	Env    []string `json:"env,omitempty"`
}

// ErrNotRunning says the recorded process is gone: it exited, the record is of another
// boot, or its pid now belongs to another process.
var ErrNotRunning = errors.New("not running")

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
	return &r, nil
}

// writeRecord replaces the record file atomically: a crash leaves the old one or the new.
func writeRecord(file string, r *Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// newRecord describes a process this supervisor just started.
func newRecord(pid int, bin string, args, env []string) (*Record, error) {
	st, err := readStat(pid)
	if err != nil {
		return nil, err
	}
	boot, err := bootID()
	if err != nil {
		return nil, err
	}
	return &Record{Pid: pid, StartTime: st.startTime, BootID: boot, Binary: bin, Args: args, Env: env}, nil
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

// verify compares /proc with the record: start time, state, executable and command line.
func (r *Record) verify() error {
	st, err := readStat(r.Pid)
	if err != nil {
		return ErrNotRunning
	}
	if st.startTime != r.StartTime || st.state == 'Z' || st.state == 'X' {
		return ErrNotRunning
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", r.Pid))
	if err != nil {
		return fmt.Errorf("pid %d: %w", r.Pid, err)
	}
	// A binary replaced on disk since (a rebuild) shows as "<path> (deleted)".
	exe = strings.TrimSuffix(exe, " (deleted)")
	want := r.Binary
	if resolved, err := filepath.EvalSymlinks(want); err == nil {
		want = resolved
	}
	if abs, err := filepath.Abs(want); err == nil {
		want = abs
	}
	if exe != want {
		return fmt.Errorf("%w: pid %d runs %s, not %s (a foreign process)", ErrNotRunning, r.Pid, exe, want)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", r.Pid))
	if err != nil {
		return fmt.Errorf("pid %d: %w", r.Pid, err)
	}
	argv := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	if len(argv) == 0 || !slices.Equal(argv[1:], r.Args) {
		return fmt.Errorf("%w: pid %d has another command line than recorded (a foreign process)", ErrNotRunning, r.Pid)
	}
	return nil
}

// Alive reports whether the process of a record file runs and is the recorded one.
func Alive(file string) bool {
	r, err := ReadRecord(file)
	if err != nil {
		return false
	}
	fd, err := r.open()
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// StopRecorded stops the process of a record file, if it runs and is the recorded one:
// SIGTERM, then SIGKILL after grace. It returns once the process has ended.
func StopRecorded(file string, grace time.Duration) error {
	r, err := ReadRecord(file)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	fd, err := r.open()
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return stopPidfd(fd, grace)
}

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
	if !exited(fd, 10*time.Second) {
		return errors.New("process did not end after SIGKILL")
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
		if err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0 {
			return true
		}
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return false
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
