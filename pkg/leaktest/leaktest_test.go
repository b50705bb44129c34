package leaktest

import (
	"testing"
	"time"
)

// TestRunningSeesAGoroutineUntilItEnds: a goroutine running the marked code is found
// while it runs, the test's own goroutine never, and Check passes once it ended.
func TestRunningSeesAGoroutineUntilItEnds(t *testing.T) {
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				time.Sleep(time.Millisecond)
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(Running("time.Sleep")) == 0 {
		if time.Now().After(deadline) {
			close(stop)
			t.Fatal("a goroutine in time.Sleep was not found")
		}
		time.Sleep(time.Millisecond)
	}
	if got := Running("testing.tRunner"); len(got) != 0 {
		t.Errorf("the test's own goroutine counted: %v", got)
	}
	close(stop)
	Check(t, 5*time.Second, "time.Sleep")
}
