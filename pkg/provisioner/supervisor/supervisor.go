package supervisor

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// Restart backoff: doubled after each quick failure, reset once a run lasted stableAfter.
const (
	initialBackoff = time.Second
	maxBackoff     = 30 * time.Second
	stableAfter    = time.Minute
)

// Component is a process to keep running.
type Component struct {
	// Name names the component in logs and its log file (LogDir/Name.log).
	Name string
	// Binary and Args are the command.
	Binary string
	Args   []string
	// Env is added to the environment the process inherits.
	Env []string
	// LogDir holds the log file.
	LogDir string
	// OnExit, if set, is called each time the process exits unasked, before it is restarted.
	OnExit func()
	// StopGrace is how long the process may take to stop after SIGTERM; zero means
	// DefaultStopGrace.
	StopGrace time.Duration
	// StateFile, when set, makes the component outlive its supervisor: each process started
	// is recorded there, Detach leaves it running, and Resume adopts it later.
	StateFile string
}

func (c *Component) command() Command {
	return Command{Name: c.Name, Binary: c.Binary, Args: c.Args, Env: c.Env, LogDir: c.LogDir, Outlive: c.StateFile != ""}
}

func (c *Component) grace() time.Duration {
	if c.StopGrace > 0 {
		return c.StopGrace
	}
	return DefaultStopGrace
}

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

// Supervised keeps one component running, restarting it with backoff whenever it exits,
// until Stop or Detach.
type Supervised struct {
	c        Component
	stop     chan struct{}
	detach   chan struct{}
	stopOnce sync.Once
	kick     chan struct{}
	done     chan struct{}

	mu       sync.Mutex
	proc     *Process
	restarts int
	lastErr  error
	// asked marks an exit Restart asked for: not a failure to count or report.
	asked bool
}

// Supervise starts the component and keeps it running.
func Supervise(c Component) *Supervised {
	return run(c, nil)
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

func run(c Component, first *Process) *Supervised {
	s := &Supervised{c: c, stop: make(chan struct{}), detach: make(chan struct{}), kick: make(chan struct{}, 1), done: make(chan struct{})}
	if first != nil {
		s.proc = first
	}
	go s.loop(first)
	return s
}

// start starts the process and records it; a process that cannot be recorded is stopped
// again, since nobody could find it after this supervisor is gone.
func (s *Supervised) start() (*Process, error) {
	p, err := Start(s.c.command())
	if err != nil {
		return nil, err
	}
	p.grace = s.c.grace()
	if s.c.StateFile == "" {
		return p, nil
	}
	rec, err := newRecord(s.c.StateFile, p.Pid(), s.c.Binary, s.c.Args, s.c.Env)
	if err == nil {
		err = writeRecord(s.c.StateFile, rec)
	}
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("record %s: %w", s.c.Name, err)
	}
	return p, nil
}

func (s *Supervised) loop(p *Process) {
	defer close(s.done)
	backoff := initialBackoff
	for {
		var err error
		if p == nil {
			p, err = s.start()
		}
		started := time.Now()
		if err == nil {
			s.mu.Lock()
			s.proc = p
			s.mu.Unlock()
			select {
			case <-p.Done():
				err = p.Failure()
				p.closePidfd()
			case <-s.stop:
				p.Stop()
				p.closePidfd()
				if s.c.StateFile != "" {
					_ = os.Remove(s.c.StateFile)
				}
				return
			case <-s.detach:
				p.Release()
				return
			}
		}
		p = nil
		if time.Since(started) > stableAfter {
			backoff = initialBackoff
		}
		s.mu.Lock()
		asked := s.asked
		s.asked = false
		if !asked {
			s.restarts++
			s.lastErr = err
		}
		s.mu.Unlock()
		if !asked {
			klog.InfoS("Component exited; restarting", "component", s.c.Name, "logDir", s.c.LogDir, "backoff", backoff, "err", err)
			if s.c.OnExit != nil {
				s.c.OnExit()
			}
		}
		select {
		case <-s.stop:
			return
		case <-s.detach:
			return
		case <-s.kick:
			backoff = initialBackoff
		case <-time.After(backoff):
			backoff = min(backoff*2, maxBackoff)
		}
	}
}

// Running reports whether the component's process is alive now.
func (s *Supervised) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.Exited()
}

// Pid is the current process id, or 0.
func (s *Supervised) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.Exited() {
		return 0
	}
	return s.proc.Pid()
}

// Restarts counts how often the component exited, and LastError says why it last did.
func (s *Supervised) Restarts() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts, s.lastErr
}

// Restart stops the running process and starts it again at once (to pick up new
// certificates, say).
func (s *Supervised) Restart() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
	s.mu.Lock()
	p := s.proc
	s.asked = p != nil && !p.Exited()
	s.mu.Unlock()
	p.Stop()
}

// Stop stops the component for good and waits until its process has ended.
func (s *Supervised) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Detach stops supervising and leaves the process running, to be adopted by the next
// supervisor through Resume. A component without a StateFile is stopped instead: nothing
// could find it again.
func (s *Supervised) Detach() {
	if s.c.StateFile == "" {
		s.Stop()
		return
	}
	s.stopOnce.Do(func() { close(s.detach) })
	<-s.done
}
