package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/component-base/metrics/testutil"

	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

// TestReconcileIsRetriedAndRequeued: a failing reconcile is retried until it succeeds, a
// requested delay brings the key back, and each outcome is counted under the
// controller's name.
func TestReconcileIsRetriedAndRequeued(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	done := make(chan struct{})
	r := ReconcilerFunc(func(_ context.Context, key string) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		switch calls {
		case 1, 2:
			return 0, errors.New("not yet")
		case 3:
			return 10 * time.Millisecond, nil // look again soon
		case 4:
			close(done)
		}
		return 0, nil
	})
	c := New("test-retry", r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go c.Run(ctx, 1)
	c.EnqueueKey("ns/a")
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("not reconciled four times: %d", calls)
	}
	// The fourth reconcile is counted once it returned.
	for ok := 0.0; ok < 2; {
		ok, _ = testutil.GetCounterMetricValue(reconciles.WithLabelValues("test-retry", "ok"))
		select {
		case <-ctx.Done():
			t.Fatalf("successes counted %v, want 2", ok)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if n, _ := testutil.GetCounterMetricValue(reconciles.WithLabelValues("test-retry", "error")); n != 2 {
		t.Errorf("errors counted %v, want 2", n)
	}
}

// TestAPermanentErrorIsRetriedSlowly: no hot loop while an operator fixes the cause.
func TestAPermanentErrorIsRetriedSlowly(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	r := ReconcilerFunc(func(context.Context, string) (time.Duration, error) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return 0, &provisioner.PermanentError{Err: errors.New("binaries missing")}
	})
	c := New("test-permanent", r)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go c.Run(ctx, 1)
	c.EnqueueKey("ns/a")
	<-ctx.Done()
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 1 {
		t.Errorf("reconciled %d times in 2s, want once (next try after %s)", len(at), permanentRetry)
	}
	if n, _ := testutil.GetCounterMetricValue(reconciles.WithLabelValues("test-permanent", "permanent_error")); n != 1 {
		t.Errorf("permanent errors counted %v, want 1", n)
	}
}
