package node

import (
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// drainMemory is what this process knows of each drain it works on, which the status
// does not say: which pods this round of evictions asked, whether a whole round was made,
// since when looking at the node's pods fails, and how long its budgets have blocked it.
type drainMemory struct {
	mu     sync.Mutex
	drains map[types.UID]*drainSeen
}

type drainSeen struct {
	// asked are the pods this round asked; evicted is set once a round asked every pod.
	asked   map[types.UID]bool
	evicted bool
	// failingSince is when cordoning the node or listing its pods began to fail.
	failingSince time.Time
	// blocked counts the rounds in a row that budgets refused.
	blocked int
}

// unaskedFirst orders the pods for a pass: those this round has not asked yet first, so
// that pods budgets keep blocking do not crowd out those after them.
func (m *drainMemory) unaskedFirst(uid types.UID, pods []corev1.Pod) []corev1.Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.get(uid)
	out := slices.Clone(pods)
	slices.SortStableFunc(out, func(a, b corev1.Pod) int {
		switch aa, ba := d.asked[a.UID], d.asked[b.UID]; {
		case aa == ba:
			return 0
		case ba:
			return -1
		}
		return 1
	})
	return out
}

// asked records the pods a pass asked; once every pod of the node was asked (or is on
// its way out) the round is done: the drain has asked every budget once, and the next
// round starts afresh.
func (m *drainMemory) asked(uid types.UID, asked []types.UID, pods []corev1.Pod) (roundDone bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.get(uid)
	if d.asked == nil {
		d.asked = map[types.UID]bool{}
	}
	for _, a := range asked {
		d.asked[a] = true
	}
	for _, p := range pods {
		if p.DeletionTimestamp == nil && !d.asked[p.UID] {
			return false
		}
	}
	d.evicted, d.asked = true, nil
	return true
}

// overdue tells whether a drain past its deadline may delete its node now: once this
// process has asked every pod once, or has failed to look at the node's pods for
// overdueGrace (a cordon or a list that keeps failing does not hold a deletion up for
// ever).
func (m *drainMemory) overdue(uid types.UID, now, deadline time.Time) bool {
	if now.Before(deadline) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.get(uid)
	return d.evicted || (!d.failingSince.IsZero() && now.Sub(d.failingSince) >= overdueGrace)
}

// failed records that the node's pods could not be looked at; listed that they could.
func (m *drainMemory) failed(uid types.UID, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := m.get(uid); d.failingSince.IsZero() {
		d.failingSince = now
	}
}

func (m *drainMemory) listed(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.get(uid).failingSince = time.Time{}
}

// blockedPoll is how soon a drain that budgets block tries again: drainPoll, doubling
// with each blocked round up to maxDrainPoll; unblocked starts it afresh.
func (m *drainMemory) blockedPoll(uid types.UID) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.get(uid)
	poll := drainPoll << min(d.blocked, 3)
	d.blocked++
	return min(poll, maxDrainPoll)
}

func (m *drainMemory) unblocked(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.get(uid).blocked = 0
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
