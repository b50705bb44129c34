package supervisor

import (
	"fmt"
	"os"
	"sync"
	"time"

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
