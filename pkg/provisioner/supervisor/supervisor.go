package supervisor

import (
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
}

// Supervised keeps one component running, restarting it with backoff whenever it exits,
// until Stop.
type Supervised struct {
	c        Component
	stop     chan struct{}
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
	s := &Supervised{c: c, stop: make(chan struct{}), kick: make(chan struct{}, 1), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *Supervised) loop() {
	defer close(s.done)
	backoff := initialBackoff
	for {
		p, err := Start(s.c.Name, s.c.Binary, s.c.Args, s.c.Env, s.c.LogDir)
		started := time.Now()
		if err == nil {
			if s.c.StopGrace > 0 {
				p.grace = s.c.StopGrace
			}
			s.mu.Lock()
			s.proc = p
			s.mu.Unlock()
			select {
			case <-p.Done():
				err = p.Failure()
			case <-s.stop:
				p.Stop()
				return
			}
		}
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
