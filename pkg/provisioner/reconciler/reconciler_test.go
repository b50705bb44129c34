package reconciler

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// TestAConflictIsRetriedWithoutBackoff: a write that met a newer object is no failure:
// many conflicts in a row do not slow the key down the way errors do.
func TestAConflictIsRetriedWithoutBackoff(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	done := make(chan struct{})
	r := ReconcilerFunc(func(context.Context, string) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 12 {
			close(done)
		}
		if calls >= 12 {
			return 0, nil
		}
		return 0, apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, "a", errors.New("changed"))
	})
	c := New("test-conflict", r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go c.Run(ctx, 1)
	start := time.Now()
	c.EnqueueKey("ns/a")
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("reconciled %d times", calls)
	}
	// Eleven errors would have backed off 5 ms doubling (over 10 s in all).
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("eleven conflicts took %v", took)
	}
	if n, _ := testutil.GetCounterMetricValue(reconciles.WithLabelValues("test-conflict", "error")); n != 0 {
		t.Errorf("conflicts counted as errors: %v", n)
	}
}
