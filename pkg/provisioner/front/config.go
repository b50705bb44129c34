package front

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Defaults of the Config's durations, used where a duration is zero.
const (
	DefaultProbeInterval = time.Second
	DefaultDialTimeout   = time.Second
	DefaultDrainTimeout  = time.Minute
	// DefaultShutdownTimeout stays below the supervisor's default stop grace (30 s), so
	// that a stopping front ends its connections itself instead of being killed.
	DefaultShutdownTimeout = 20 * time.Second
)

// Config is what one front serves: where it accepts and which kube-apiservers it
// forwards to. It is JSON, one file per cluster, written by the driver and re-read by the
// command when it changes. Unknown fields are ignored, so that a front adopted from an
// earlier release still reads the config a newer driver writes.
type Config struct {
	// Listen are the host:port addresses to accept on (port 0 picks one). They are bound
	// once, by New: Update leaves them as they are, and changing them takes a restart of
	// the front.
	Listen []string `json:"listen"`
	// CAFile is the PEM bundle trusted when probing the backends' /readyz: the cluster CA.
	// It is read by New and by every Update.
	CAFile string `json:"caFile"`
	// Backends are the kube-apiservers to forward to. A backend is known by its name and
	// address together: one whose address changes is a new backend, and the old one drains.
	Backends []Backend `json:"backends"`
	// ProbeInterval is the time between two probes of one backend.
	ProbeInterval Duration `json:"probeInterval,omitempty"`
	// DialTimeout bounds each connection attempt to a backend.
	DialTimeout Duration `json:"dialTimeout,omitempty"`
	// DrainTimeout is how long the open connections of a draining (or removed) backend
	// are left before they are closed, counted from when the drain began.
	DrainTimeout Duration `json:"drainTimeout,omitempty"`
	// ShutdownTimeout is how long Run waits for open connections once its context ends,
	// before it closes them.
	ShutdownTimeout Duration `json:"shutdownTimeout,omitempty"`
	// Generation is the writer's count of its configs, echoed in the status of the front
	// that applied this one: a status is then known to come from after a change.
	Generation int64 `json:"generation,omitempty"`
}

// Backend is one kube-apiserver behind the front.
type Backend struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Draining takes the backend out of rotation: it gets no new connection, and its
	// open ones end by themselves or at DrainTimeout.
	Draining bool `json:"draining,omitempty"`
}

// Duration is a time.Duration written in JSON as a string such as "1s" or "250ms".
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a string such as "1s".
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"1s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads and checks a config file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read front config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("front config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes and checks a config.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("decode: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports the first thing wrong with the config.
func (c Config) Validate() error {
	if len(c.Listen) == 0 {
		return errors.New("listen: at least one address is required")
	}
	for i, l := range c.Listen {
		if err := checkAddress(l); err != nil {
			return fmt.Errorf("listen[%d]: %w", i, err)
		}
	}
	if c.CAFile == "" {
		return errors.New("caFile: required, to probe the backends over TLS")
	}
	names, addresses := map[string]bool{}, map[string]bool{}
	for i, b := range c.Backends {
		switch {
		case b.Name == "":
			return fmt.Errorf("backends[%d].name: required", i)
		case names[b.Name]:
			return fmt.Errorf("backends[%d].name: %q is used twice", i, b.Name)
		case addresses[b.Address]:
			return fmt.Errorf("backends[%d].address: %q is used twice", i, b.Address)
		}
		if err := checkAddress(b.Address); err != nil {
			return fmt.Errorf("backends[%d].address: %w", i, err)
		}
		names[b.Name], addresses[b.Address] = true, true
	}
	for name, d := range map[string]Duration{"probeInterval": c.ProbeInterval, "dialTimeout": c.DialTimeout, "drainTimeout": c.DrainTimeout, "shutdownTimeout": c.ShutdownTimeout} {
		if d < 0 {
			return fmt.Errorf("%s: %v is negative", name, time.Duration(d))
		}
	}
	return nil
}

func checkAddress(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no port number", addr)
	}
	return nil
}

// withDefaults fills the zero durations.
func (c Config) withDefaults() Config {
	set := func(d *Duration, def time.Duration) {
		if *d == 0 {
			*d = Duration(def)
		}
	}
	set(&c.ProbeInterval, DefaultProbeInterval)
	set(&c.DialTimeout, DefaultDialTimeout)
	set(&c.DrainTimeout, DefaultDrainTimeout)
	set(&c.ShutdownTimeout, DefaultShutdownTimeout)
	return c
}

// loadCA reads the PEM bundle the probes trust.
func loadCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the probes' CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("the probes' CA %s holds no PEM certificate", path)
	}
	return pool, nil
}
