package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
	"github.com/ucloudstack/containerservice/pkg/provisioner/front"
)

// options are the command's flags, and the periods tests shorten.
type options struct {
	config, status string
	// tick is how often the config file is looked at (its identity, mtime and size) and
	// the status written: one wake-up for both, since an idle front should sleep.
	tick time.Duration
}

// run serves the config until ctx ends and the front has stopped.
func run(ctx context.Context, o options) error {
	if o.config == "" || o.status == "" {
		return errors.New("--config and --status are required")
	}
	cfg, err := front.LoadConfig(o.config)
	if err != nil {
		return err
	}
	seen, err := os.Stat(o.config)
	if err != nil {
		return fmt.Errorf("stat front config: %w", err)
	}
	f, err := front.New(cfg)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	r := &reloader{path: o.config, seen: seen, front: f}
	writeStatus(o.status, f, r.configError)
	tick := time.NewTicker(o.tick)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			writeStatus(o.status, f, r.configError)
			return err
		case <-tick.C:
			r.poll()
			writeStatus(o.status, f, r.configError)
		}
	}
}

// reloader applies the config file whenever it changes.
type reloader struct {
	path  string
	seen  os.FileInfo // the file as last read
	front *front.Front
	// configError is why the file as it is now is not applied, or "".
	configError string
}

// poll reads the config again when the file was replaced, or its mtime or size changed.
// A config that does not load or apply is logged once and ignored.
func (r *reloader) poll() {
	info, err := os.Stat(r.path)
	if err != nil {
		r.seen = nil // whatever appears there next is read
		r.refuse(fmt.Errorf("stat front config: %w", err))
		return
	}
	if r.seen != nil && os.SameFile(info, r.seen) && info.ModTime().Equal(r.seen.ModTime()) && info.Size() == r.seen.Size() {
		return
	}
	r.seen = info
	cfg, err := front.LoadConfig(r.path)
	if err == nil {
		err = r.front.Update(cfg)
	}
	if err != nil {
		r.refuse(err)
		return
	}
	r.configError = ""
	klog.InfoS("Front config applied", "config", r.path, "backends", len(cfg.Backends))
}

func (r *reloader) refuse(err error) {
	if err.Error() != r.configError {
		klog.ErrorS(err, "Ignoring the front config; the last good one stays", "config", r.path)
	}
	r.configError = err.Error()
}

// writeStatus replaces the status file; a failure is logged, and the next tick tries again.
func writeStatus(path string, f *front.Front, configError string) {
	s := front.StatusFile{Time: time.Now().UTC(), PID: os.Getpid(), ConfigError: configError, Status: f.Status()}
	data, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = atomicfile.WriteVolatile(path, append(data, '\n'), 0o600)
	}
	if err != nil {
		klog.ErrorS(err, "Writing the front status failed", "status", path)
	}
}
