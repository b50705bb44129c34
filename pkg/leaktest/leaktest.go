// Package leaktest finds the goroutines a test left running, for the unit tests of code
// that starts its own (the front, its command, the volume provisioners): stopping must
// end them, and a leak in a long-running server adds up.
package leaktest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Running returns the stacks of the goroutines that run code of any of markers (a frame
// whose function or file mentions one), the tests' own aside: the goroutine of a test,
// and frames in _test.go files.
func Running(markers ...string) []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var running []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") {
			continue
		}
		if mentions(g, markers) {
			running = append(running, g)
		}
	}
	return running
}

func mentions(g string, markers []string) bool {
	for _, line := range strings.Split(g, "\n") {
		if strings.Contains(line, "_test.go:") {
			continue
		}
		for _, m := range markers {
			if strings.Contains(line, m) {
				return true
			}
		}
	}
	return false
}

// Check fails t unless the goroutines of markers have all ended within timeout.
func Check(t testing.TB, timeout time.Duration, markers ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	left := Running(markers...)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		left = Running(markers...)
	}
	if len(left) > 0 {
		t.Errorf("%d goroutines of %s still running:\n%s", len(left), strings.Join(markers, ", "), strings.Join(left, "\n\n"))
	}
}
