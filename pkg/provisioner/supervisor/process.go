// Package supervisor runs the platform's components as child processes: each with its own
// log file and process group, killed by the kernel if the parent dies (so nothing is ever
// orphaned), stopped gracefully, and, under a Supervisor, restarted with backoff.
package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultStopGrace is how long a process may take to shut down after SIGTERM before it is
// killed; containerservice-apiserver itself stops every user control plane in that time.
const DefaultStopGrace = 30 * time.Second

// Process is one component running as a child process.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
	err     error
	// grace is how long Stop waits after SIGTERM.
	grace time.Duration
}

// Start runs bin with args and env added to this process's environment, its output
// appended to logDir/name.log. The child gets its
// own process group and is killed by the kernel if this process dies, so a crashed test
// or an interrupted server leaves nothing running.
func Start(name, bin string, args, env []string, logDir string) (*Process, error) {
	logFile := filepath.Join(logDir, name+".log")
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &Process{name: name, cmd: cmd, logFile: logFile, done: make(chan struct{}), grace: DefaultStopGrace}
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
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop asks the process group to terminate and kills it after the grace period.
func (p *Process) Stop() {
	if p == nil || p.Exited() {
		return
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(p.grace):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
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
