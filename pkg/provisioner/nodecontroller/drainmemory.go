package nodecontroller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// drainMemory is what this process knows of each drain it works on, which the status
// does not say: where its round of evictions is, whether a whole round was made, since
// when the drain is overdue, and how long its budgets have blocked it.
type drainMemory struct {
	mu     sync.Mutex
	drains map[types.UID]*drainSeen
}

type drainSeen struct {
	// next is the pod the next pass starts at; round counts the pods gone past since the
	// last whole round; evicted is set once a whole round was made.
	next, round int
	evicted     bool
	// overdueSince is when this process first found the drain past its deadline.
	overdueSince time.Time
	// blocked counts the passes in a row that budgets refused.
	blocked int
}

// cursor is the pod the drain's next pass starts at.
func (m *drainMemory) cursor(uid types.UID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.get(uid).next
}

// passed records a pass of evictions that went up to the pod before next of total;
// blockedAny says whether budgets refused any.
func (m *drainMemory) passed(uid types.UID, next, total int, blockedAny bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.get(uid)
	d.round += next - d.next
	if d.round >= total {
		d.evicted, d.round = true, 0
	}
	d.next = 0
	if total > 0 {
		d.next = next % total
	}
	if !blockedAny {
		d.blocked = 0
	}
}

// overdue tells whether a drain past its deadline may delete its node now: once this
// process has asked every pod once (a deadline that passed while the cluster or the
// server was down does not take the pods' budgets away unasked), or has failed to for
// overdueGrace (a cordon or a list that keeps failing does not hold a deletion up for
// ever).
func (m *drainMemory) overdue(uid types.UID, now, deadline time.Time) bool {
	if now.Before(deadline) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.get(uid)
	if d.overdueSince.IsZero() {
		d.overdueSince = now
	}
	return d.evicted || now.Sub(d.overdueSince) >= overdueGrace
}

// blockedPoll is how soon a drain that budgets block tries again: drainPoll, doubling
// with each blocked pass up to maxDrainPoll.
func (m *drainMemory) blockedPoll(uid types.UID) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.get(uid)
	poll := drainPoll << min(d.blocked, 3)
	d.blocked++
	return min(poll, maxDrainPoll)
}

func (m *drainMemory) get(uid types.UID) *drainSeen {
	if m.drains == nil {
		m.drains = map[types.UID]*drainSeen{}
	}
	if m.drains[uid] == nil {
		m.drains[uid] = &drainSeen{}
	}
	return m.drains[uid]
}

// forget drops what is known of a drain that ended.
func (m *drainMemory) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.drains, uid)
}
