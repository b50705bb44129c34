// Package supervisor runs the platform's components as processes: each with its own log
// file, stopped gracefully, and, under a Supervisor, restarted with backoff. A process is
// either tied to its parent (killed by the kernel when the parent dies, for the local
// stack's own parts) or outlives it (user control planes, which must survive a restart of
// containerservice-apiserver): those are recorded in a file, so that the next supervisor
// adopts them instead of starting them again.
package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// DefaultStopGrace is how long a process may take to shut down after SIGTERM before it is
// killed.
const DefaultStopGrace = 30 * time.Second

// Command is a process to start.
type Command struct {
	// Name names the process in logs and its log file (LogDir/Name.log).
	Name string
	// Binary and Args are the command.
	Binary string
	Args   []string
	// Env is added to the environment the process inherits.
	Env []string
	// LogDir holds the log file.
	LogDir string
	// Outlive lets the process run on when its parent dies: it gets a session of its own
	// and no parent-death signal. Otherwise the kernel kills it with its parent, so a
	// crashed test leaves nothing running.
	Outlive bool
}

// Process is one running component: a child this process started, or a process adopted
// from an earlier supervisor.
type Process struct {
	name    string
	pid     int
	logFile string
	done    chan struct{}
	err     error
	grace   time.Duration

	// cmd is set for a child; pidfd (and release) for an adopted process. fdMu guards
	// pidfd, which is -1 once closed: a closed descriptor's number may name something
	// else by then, so no signal goes through it.
	cmd      *exec.Cmd
	fdMu     sync.Mutex
	pidfd    int
	release  chan struct{}
	watching chan struct{}
	relOnce  sync.Once
}

// Start runs the command, its output appended to LogDir/Name.log.
func Start(c Command) (*Process, error) {
	logFile := filepath.Join(c.LogDir, c.Name+".log")
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", c.Name, err)
	}
	cmd := exec.Command(c.Binary, c.Args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), c.Env...)
	if c.Outlive {
		// A session of its own: a Ctrl-C or a signal to the parent's process group does
		// not reach it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s (%s): %w", c.Name, c.Binary, err)
	}
	p := &Process{name: c.Name, pid: cmd.Process.Pid, cmd: cmd, pidfd: -1, logFile: logFile, done: make(chan struct{}), grace: DefaultStopGrace}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Pid is the process id.
func (p *Process) Pid() int { return p.pid }

// Stop asks the process to terminate and kills it after the grace period.
func (p *Process) Stop() {
	if p == nil || p.Exited() {
		return
	}
	if p.cmd == nil {
		// Adopted: signals go through the pidfd, so they cannot reach a reused pid.
		p.signal(unix.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(p.grace):
			p.signal(unix.SIGKILL)
			p.waitKilled()
		}
		return
	}
	// A child cannot be reused before it is reaped, so its process group id is safe to use.
	pgid := -p.pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(p.grace):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		p.waitKilled()
	}
}

// signal sends sig through the pidfd, if it is still open.
func (p *Process) signal(sig unix.Signal) {
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	if p.pidfd >= 0 {
		_ = unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	}
}

// waitKilled waits for the end of a killed process, but not forever: one stuck in an
// uninterruptible wait must not hang whoever stops it.
func (p *Process) waitKilled() {
	select {
	case <-p.done:
	case <-time.After(killWait):
		klog.InfoS("Process did not end after SIGKILL; giving up waiting", "process", p.name, "pid", p.pid, "waited", killWait)
	}
}

// Release forgets the process without stopping it: it runs on, to be adopted by the next
// supervisor. For a child, the kernel hands it to another parent when this one exits.
func (p *Process) Release() {
	if p == nil || p.cmd != nil {
		return
	}
	p.relOnce.Do(func() { close(p.release) })
	// The watcher polls the pidfd: it must be done with it before it is closed.
	<-p.watching
	p.closePidfd()
}

// closePidfd closes an adopted process's pidfd once its watcher is done with it.
func (p *Process) closePidfd() {
	if p.cmd != nil {
		return
	}
	<-p.watching
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}

// Failure describes why the process ended, with the end of its log.
func (p *Process) Failure() error {
	tail, _ := os.ReadFile(p.logFile)
	if len(tail) > 4096 {
		tail = tail[len(tail)-4096:]
	}
	return fmt.Errorf("%s exited (%v); end of %s:\n%s", p.name, p.err, p.logFile, bytes.TrimSpace(tail))
}

// WaitFor polls check every 200ms until it succeeds, the process dies, or ctx ends.
func (p *Process) WaitFor(ctx context.Context, what string, check func(context.Context) error) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.Failure()
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("%s: %s: %w", p.name, what, ctx.Err()), last)
		case <-tick.C:
		}
	}
}
