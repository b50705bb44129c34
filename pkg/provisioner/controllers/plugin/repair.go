package plugin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// repair puts back the objects the watches reported changed or deleted, each at most
// repairBurst times at once and then once per repairEvery.
func (r *pass) repair(ctx context.Context) (*v1alpha1.PluginStatus, time.Duration, error) {
	var dirty []v1alpha1.AppliedObject
	r.c.states.with(r.key, func(ps *pluginState) { dirty = ps.takeDirty() })
	// What this pass does not get to (an error, an object not ours) stays to be done.
	done := 0
	defer func() {
		r.c.states.with(r.key, func(ps *pluginState) {
			for _, o := range dirty[done:] {
				ps.dirty[o] = true
			}
		})
	}()
	var later time.Duration
	for ; done < len(dirty); done++ {
		o := dirty[done]
		i := slices.Index(r.inventory, o)
		if i < 0 {
			continue // not (or no longer) the plugin's: never touched
		}
		now := time.Now()
		var allowed bool
		var wait time.Duration
		r.c.states.with(r.key, func(ps *pluginState) { allowed, wait = ps.mayRepair(o, now) })
		if !allowed {
			r.c.states.with(r.key, func(ps *pluginState) { ps.dirty[o] = true })
			if later == 0 || wait < later {
				later = wait
			}
			continue
		}
		cur, err := r.t.Meta(ctx, o)
		if err != nil {
			return r.st, 0, remote("read "+describe(o), err)
		}
		if cur != nil && cur.Labels[v1alpha1.PluginLabel] != r.p.Name {
			return r.notOurs(o)
		}
		objs, err := r.objects()
		if err != nil {
			return r.st, 0, err
		}
		got, err := r.c.apply(ctx, r.t, objs[i], r.p.Name)
		if err != nil {
			setCondition(r.st, r.p.Generation, v1alpha1.PluginConditionDegraded, metav1.ConditionTrue, "ApplyFailed", fmt.Sprintf("%s cannot be applied: %v", describe(o), err))
			return r.st, 0, remote("apply "+describe(o), err)
		}
		wrote := cur == nil || cur.ResourceVersion != got.GetResourceVersion()
		r.c.states.with(r.key, func(ps *pluginState) {
			ps.health[o], ps.seen[o] = healthOf(got), got.GetResourceVersion()
			if wrote {
				ps.spend(o, now)
			}
		})
		if wrote {
			r.c.repaired(r.p, o, cur == nil)
		}
	}
	return r.report(ctx, later)
}

// report reads again the objects not yet current, then sets the phase, the conditions
// and the count of current objects. It returns when to look again: soon while anything
// is progressing, at the next full look otherwise, and no later than later when that is
// set (a repair held back).
func (r *pass) report(ctx context.Context, later time.Duration) (*v1alpha1.PluginStatus, time.Duration, error) {
	st, gen := r.st, r.p.Generation
	var healths map[v1alpha1.AppliedObject]health
	var lastFull time.Time
	r.c.states.with(r.key, func(ps *pluginState) { healths, lastFull = maps.Clone(ps.health), ps.lastFull })
	for _, o := range r.inventory {
		if h, ok := healths[o]; ok && h.current() {
			continue
		}
		got, err := r.t.Get(ctx, o)
		if err != nil {
			return st, 0, remote("read "+describe(o), err)
		}
		h := health{status: "NotFound", message: "not found"}
		if got != nil {
			h = healthOf(got)
		}
		healths[o] = h
		r.c.states.with(r.key, func(ps *pluginState) { ps.health[o] = h })
	}
	var progressingObjs, failed []string
	current := 0
	for _, o := range r.inventory {
		switch h := healths[o]; {
		case h.current():
			current++
		case h.status == statusFailed:
			failed = append(failed, fmt.Sprintf("%s is %s: %s", describe(o), h.status, h.message))
		default:
			progressingObjs = append(progressingObjs, fmt.Sprintf("%s is %s: %s", describe(o), h.status, h.message))
		}
	}
	st.CurrentObjects = int32(current)
	st.Ready = current == len(r.inventory)
	if len(failed) > 0 {
		setCondition(st, gen, v1alpha1.PluginConditionDegraded, metav1.ConditionTrue, "Failed", joinAll(failed))
	} else {
		setCondition(st, gen, v1alpha1.PluginConditionDegraded, metav1.ConditionFalse, "AsExpected", "no object failed")
	}
	if len(progressingObjs) > 0 {
		setCondition(st, gen, v1alpha1.PluginConditionProgressing, metav1.ConditionTrue, "InProgress", joinAll(progressingObjs))
	} else {
		setCondition(st, gen, v1alpha1.PluginConditionProgressing, metav1.ConditionFalse, "Current", "every object is current")
	}
	after := time.Until(lastFull.Add(fullResync))
	if st.Ready {
		st.Phase = v1alpha1.PluginReady
		setReady(st, gen, metav1.ConditionTrue, "Current", "every object is current")
	} else {
		st.Phase = v1alpha1.PluginApplying
		if len(failed) > 0 {
			st.Phase = v1alpha1.PluginFailed
		}
		setReady(st, gen, metav1.ConditionFalse, "NotCurrent", fmt.Sprintf("%d of %d objects current; %s", current, len(r.inventory), joinAll(append(failed, progressingObjs...))))
		after = progressing
	}
	if later > 0 && later < after {
		after = later
	}
	return st, max(after, time.Millisecond), nil
}

func (r *pass) notOurs(o v1alpha1.AppliedObject) (*v1alpha1.PluginStatus, time.Duration, error) {
	r.st.Phase = v1alpha1.PluginFailed
	msg := describe(o) + " exists and was not made by this plugin: it is never taken over"
	setReady(r.st, r.p.Generation, metav1.ConditionFalse, "NotOurs", msg)
	setCondition(r.st, r.p.Generation, v1alpha1.PluginConditionDegraded, metav1.ConditionTrue, "NotOurs", msg)
	return r.st, notOursRetry, nil
}
