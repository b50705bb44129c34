package front

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// StatusFile is what containerservice-front writes to its --status file every second,
// for the driver to read: which backends are healthy, how many connections each still
// holds (a drained kube-apiserver may stop at 0), and whether the latest config was
// refused. Time tells a live front from a stale file.
type StatusFile struct {
	// Time is when the status was taken.
	Time time.Time `json:"time"`
	// PID is the front's process.
	PID int `json:"pid"`
	// ConfigError is why the config file as it is now was not applied; the front keeps
	// the last config that was. Empty when the file in place is applied.
	ConfigError string `json:"configError,omitempty"`
	Status
}

// ReadStatusFile reads a status file.
func ReadStatusFile(path string) (StatusFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return StatusFile{}, fmt.Errorf("read front status: %w", err)
	}
	var s StatusFile
	if err := json.Unmarshal(data, &s); err != nil {
		return StatusFile{}, fmt.Errorf("decode front status %s: %w", path, err)
	}
	return s, nil
}
