package supervisor

import (
	"bytes"
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

// What /proc and pidfds tell of a process: its identity (executable, command line,
// start time, boot), and its end.

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

// waitExit waits for the process of the pidfd to end (true) or for release (false). It
// waits in Go's network poller, not in a system call of its own: a blocking poll per
// adopted process kept one thread per process in the kernel and woke the runtime's
// monitor all the time, ~5 % of a core for the 25 processes of five clusters after a
// server restart. The poller owns (and closes) a duplicate of the pidfd; the two share
// their file status flags, so the caller's pidfd turns non-blocking too (nothing reads or
// waits on it).
func waitExit(pidfd int, release <-chan struct{}) bool {
	dup, err := unix.FcntlInt(uintptr(pidfd), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		err = unix.SetNonblock(dup, true)
		f := os.NewFile(uintptr(dup), "pidfd")
		var rc syscall.RawConn
		if err == nil {
			// A descriptor the poller cannot take has no deadlines: poll as before.
			err = f.SetReadDeadline(time.Time{})
		}
		if err == nil {
			rc, err = f.SyscallConn()
		}
		if err == nil {
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				select {
				case <-release:
					_ = f.SetReadDeadline(time.Unix(1, 0))
				case <-stop:
				}
			}()
			err = rc.Read(func(fd uintptr) bool { return exited(int(fd), 0) })
		}
		f.Close()
		if err == nil {
			return true
		}
		select {
		case <-release:
			return false
		default:
			// Not released: the poller could not take it or failed; watch the slow way.
		}
	}
	for {
		select {
		case <-release:
			return false
		default:
		}
		if exited(pidfd, 500*time.Millisecond) {
			return true
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
