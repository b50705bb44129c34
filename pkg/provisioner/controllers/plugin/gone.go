package plugin

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// goneFor is how long a deleted cluster is remembered: long enough for a reconcile that
// read it just before its deletion to have ended, and no longer, so that the record of
// deleted clusters does not grow for ever.
const goneFor = 10 * time.Minute

// goneClusters are the clusters deleted in the last goneFor, so that a reconcile that read
// one just before does not start anything for it again. Its owner's lock guards it.
type goneClusters map[types.UID]time.Time

// add records a deletion, and forgets those older than goneFor.
func (g goneClusters) add(uid types.UID, now time.Time) {
	for u, at := range g {
		if now.Sub(at) > goneFor {
			delete(g, u)
		}
	}
	g[uid] = now
}

func (g goneClusters) has(uid types.UID) bool {
	_, ok := g[uid]
	return ok
}
