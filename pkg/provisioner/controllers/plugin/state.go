package plugin

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

const (
	// fullResync is how often every object of an add-on is read back and applied again,
	// whatever the watches said: the net under them (a watch that missed something).
	fullResync = 5 * time.Minute
	// repairBurst and repairEvery bound the writes one object costs when someone inside
	// the cluster keeps undoing it: the first repairBurst repairs are at once, then one per
	// repairEvery. A tenant fighting the platform in a loop cannot make it spin.
	repairBurst = 5
	repairEvery = 10 * time.Second
)

// health is one object's kstatus reading.
type health struct {
	status  status.Status
	message string
}

func (h health) current() bool { return h.status == status.CurrentStatus }

// pluginState is what this process knows of one Plugin's objects beyond its status: what
// it applied (so an unchanged render writes nothing), each object's health, the
// resourceVersion it last saw of each (so the watch's echo of its own write is not taken
// for a change), and the objects the watches reported changed since.
type pluginState struct {
	// digest is the render this process last applied in full; "" until it did.
	digest   string
	lastFull time.Time
	// cluster and inventory are the cluster and the objects of that render: the watches'
	// news of anything else (a tenant's object wearing the label, another cluster's) is
	// no news.
	cluster   types.UID
	inventory map[v1alpha1.AppliedObject]bool
	// renderKey, rendered and renderedDigest are the last render's inventory and digest,
	// kept while the Plugin's type, version, settings and environment stay the same.
	renderKey      string
	rendered       []v1alpha1.AppliedObject
	renderedDigest string
	// waits counts the passes spent waiting for definitions to be established.
	waits   int
	health  map[v1alpha1.AppliedObject]health
	seen    map[v1alpha1.AppliedObject]string
	dirty   map[v1alpha1.AppliedObject]bool
	repairs map[v1alpha1.AppliedObject]*rate.Limiter
}

// states holds every Plugin's state; the watches write to it from their own goroutines.
type states struct {
	mu    sync.Mutex
	byKey map[string]*pluginState
}

func newStates() *states { return &states{byKey: map[string]*pluginState{}} }

// with runs f on the Plugin's state (made if missing) under the lock.
func (s *states) with(key string, f func(ps *pluginState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.byKey[key]
	if ps == nil {
		ps = &pluginState{health: map[v1alpha1.AppliedObject]health{}, seen: map[v1alpha1.AppliedObject]string{},
			dirty: map[v1alpha1.AppliedObject]bool{}, repairs: map[v1alpha1.AppliedObject]*rate.Limiter{}}
		s.byKey[key] = ps
	}
	f(ps)
}

// forget drops a Plugin's state (switched off, deleted).
func (s *states) forget(key string) {
	s.mu.Lock()
	delete(s.byKey, key)
	s.mu.Unlock()
}

// changed records that the watch saw an object of the Plugin at a resourceVersion ("" for
// a deletion) and reports whether that is news: not the echo of the Plugin's own write.
func (s *states) changed(key string, cluster types.UID, o v1alpha1.AppliedObject, resourceVersion string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.byKey[key]
	if ps == nil || ps.cluster != cluster || !ps.inventory[o] {
		// Not an object this process applied for the Plugin: a tenant's object wearing the
		// label, one of another cluster, or a Plugin not looked at yet (whose first pass
		// reads everything anyway).
		return false
	}
	if resourceVersion != "" && ps.seen[o] == resourceVersion {
		return false
	}
	ps.dirty[o] = true
	return true
}

// takeDirty returns the objects reported changed and clears the set; what is reported
// while they are handled is kept for the next pass.
func (ps *pluginState) takeDirty() []v1alpha1.AppliedObject {
	out := make([]v1alpha1.AppliedObject, 0, len(ps.dirty))
	for o := range ps.dirty {
		out = append(out, o)
	}
	clear(ps.dirty)
	return out
}

func (ps *pluginState) limiter(o v1alpha1.AppliedObject) *rate.Limiter {
	lim := ps.repairs[o]
	if lim == nil {
		lim = rate.NewLimiter(rate.Every(repairEvery), repairBurst)
		ps.repairs[o] = lim
	}
	return lim
}

// mayRepair reports whether the object may be written again now, and if not, when. Only
// writes count (spend): an object looked at again because its status moved costs nothing.
func (ps *pluginState) mayRepair(o v1alpha1.AppliedObject, now time.Time) (bool, time.Duration) {
	lim := ps.limiter(o)
	if tokens := lim.TokensAt(now); tokens < 1 {
		return false, time.Duration((1 - tokens) * float64(repairEvery))
	}
	return true, 0
}

// spend counts one repair of the object.
func (ps *pluginState) spend(o v1alpha1.AppliedObject, now time.Time) { ps.limiter(o).AllowN(now, 1) }

// tidy drops the limiters of objects that have not been repaired for long.
func (ps *pluginState) tidy(now time.Time) {
	for o, lim := range ps.repairs {
		if lim.TokensAt(now) >= repairBurst {
			delete(ps.repairs, o)
		}
	}
}
