package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/catalog"
)

// sync renders the Plugin and brings its cluster's objects to the render. A render that
// changed (or that this process has not applied yet, or not for fullResync) is applied
// in full: every object read (never taking over one the plugin did not make), applied,
// and what the new render no longer has pruned. An unchanged render writes nothing: only
// the objects the watches reported changed or deleted are put back. It returns the new
// status and when to look again.
func (c *Controller) sync(ctx context.Context, t Target, p *v1alpha1.Plugin, env catalog.Env) (*v1alpha1.PluginStatus, time.Duration, error) {
	st := p.Status.DeepCopy()
	gen := p.Generation
	entry := catalog.Lookup(p.Spec.Type)
	if enabled := p.Spec.Enabled == nil || *p.Spec.Enabled; !enabled || entry == nil {
		return c.switchOff(ctx, t, p, st, entry == nil)
	}
	version, err := entry.Resolve(p.Spec.Version)
	if err != nil {
		st.Phase = v1alpha1.PluginFailed
		setReady(st, gen, metav1.ConditionFalse, "UnknownVersion", err.Error())
		return st, 0, nil
	}
	key := p.Namespace + "/" + p.Name
	render := func() ([]*unstructured.Unstructured, string, error) { return c.render(p, entry, version, env) }
	inventory, digest, err := c.inventory(key, p, entry, version, env, render)
	if err != nil {
		// Every version of the catalog renders (a test of the catalog checks it): this is
		// a fault of the binary, said as it is.
		st.Phase = v1alpha1.PluginFailed
		setReady(st, gen, metav1.ConditionFalse, "RenderFailed", err.Error())
		return st, 0, nil
	}
	r := &pass{c: c, t: t, p: p, st: st, key: key, render: render, inventory: inventory}
	var applied string
	var lastFull time.Time
	c.states.with(r.key, func(ps *pluginState) { applied, lastFull = ps.digest, ps.lastFull })
	// This process applied this very render in full: the status may not show it yet (its
	// write is on its way back through the informer), or have lost it (a conflict).
	appliedHere := applied == digest
	changed := !appliedHere && (digest != st.RenderDigest || !slices.Equal(st.Applied, inventory))
	if !appliedHere || time.Since(lastFull) >= fullResync {
		return r.applyAll(ctx, version.Version, digest, changed)
	}
	st.Applied, st.Version, st.RenderDigest = inventory, version.Version, digest
	setCondition(st, gen, v1alpha1.PluginConditionApplied, metav1.ConditionTrue, "Applied", fmt.Sprintf("%d objects applied", len(inventory)))
	return r.repair(ctx)
}

// inventory returns what the Plugin's render holds, in the order it is applied, and its
// digest. Only these are kept while the render's inputs stay the same, not the objects:
// monitoring's definitions are megabytes, needed only when something is applied.
func (c *Controller) inventory(key string, p *v1alpha1.Plugin, entry *catalog.Entry, version *catalog.Version, env catalog.Env,
	render func() ([]*unstructured.Unstructured, string, error)) ([]v1alpha1.AppliedObject, string, error) {
	inputs, err := json.Marshal([]any{p.Name, entry.Type, version.Version, version.Values(p.Spec.Config), env})
	if err != nil {
		return nil, "", err
	}
	renderKey := string(inputs)
	var inventory []v1alpha1.AppliedObject
	var digest string
	c.states.with(key, func(ps *pluginState) {
		if ps.renderKey == renderKey {
			inventory, digest = ps.rendered, ps.renderedDigest
		}
	})
	if inventory != nil {
		return inventory, digest, nil
	}
	objs, digest, err := render()
	if err != nil {
		return nil, "", err
	}
	inventory = make([]v1alpha1.AppliedObject, len(objs))
	for i, o := range objs {
		inventory[i] = ref(o)
	}
	c.states.with(key, func(ps *pluginState) { ps.renderKey, ps.rendered, ps.renderedDigest = renderKey, inventory, digest })
	return inventory, digest, nil
}

// render returns the Plugin's objects, labelled and in the order they are applied, and
// their digest.
func (c *Controller) render(p *v1alpha1.Plugin, entry *catalog.Entry, version *catalog.Version, env catalog.Env) ([]*unstructured.Unstructured, string, error) {
	objs, err := entry.Render(version, version.Values(p.Spec.Config), env)
	if err != nil {
		return nil, "", err
	}
	for _, o := range objs {
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[v1alpha1.PluginLabel] = p.Name
		labels[v1alpha1.ManagedByLabel] = v1alpha1.ManagedByValue
		o.SetLabels(labels)
	}
	// Definitions and namespaces first, so that what lives in them can be applied.
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int { return stage(a.GetKind()) - stage(b.GetKind()) })
	digest, err := digestOf(version.Version, objs)
	if err != nil {
		return nil, "", err
	}
	return objs, digest, nil
}

// switchOff removes the objects of a Plugin switched off, or of a type no longer in
// the catalog.
func (c *Controller) switchOff(ctx context.Context, t Target, p *v1alpha1.Plugin, st *v1alpha1.PluginStatus, notInCatalog bool) (*v1alpha1.PluginStatus, time.Duration, error) {
	gen := p.Generation
	kept, err := prune(ctx, t, p.Name, st.Applied, nil)
	if err != nil {
		return st, 0, err
	}
	c.reportKept(p, st, kept)
	c.states.forget(p.Namespace + "/" + p.Name)
	st.Applied, st.Ready, st.CurrentObjects, st.RenderDigest = nil, false, 0, ""
	for _, typ := range []string{v1alpha1.PluginConditionApplied, v1alpha1.PluginConditionProgressing, v1alpha1.PluginConditionDegraded} {
		removeCondition(st, typ)
	}
	if notInCatalog {
		st.Phase = v1alpha1.PluginFailed
		setReady(st, gen, metav1.ConditionFalse, "NotInCatalog", "type "+p.Spec.Type+" is no longer in the catalog: switch the plugin off or delete it")
	} else {
		st.Phase = v1alpha1.PluginDisabled
		setReady(st, gen, metav1.ConditionFalse, "Disabled", "the plugin is switched off; its objects are removed")
	}
	return st, 0, nil
}

// pass is one reconcile of an enabled Plugin whose render is known.
type pass struct {
	c         *Controller
	t         Target
	p         *v1alpha1.Plugin
	st        *v1alpha1.PluginStatus
	key       string
	inventory []v1alpha1.AppliedObject
	// render renders the objects again when they are needed (something to apply).
	render func() ([]*unstructured.Unstructured, string, error)
	objs   []*unstructured.Unstructured
}

// objects renders the Plugin's objects once per pass.
func (r *pass) objects() ([]*unstructured.Unstructured, error) {
	if r.objs == nil {
		objs, _, err := r.render()
		if err != nil {
			return nil, err
		}
		r.objs = objs
	}
	return r.objs, nil
}

// applyAll applies every object of the render. changed says the render differs from
// the one last applied; when it does not (a restart, the periodic look), a write is a
// repair of something changed inside the cluster, and is reported as one.
func (r *pass) applyAll(ctx context.Context, version, digest string, changed bool) (*v1alpha1.PluginStatus, time.Duration, error) {
	st, gen := r.st, r.p.Generation
	if _, err := r.objects(); err != nil {
		return st, 0, err
	}
	// An object of the same name that this Plugin did not make is never taken over. Its
	// metadata says so: a definition's schema (megabytes for monitoring) is not read.
	before := make(map[v1alpha1.AppliedObject]string, len(r.objs))
	for _, o := range r.objs {
		cur, err := r.t.Meta(ctx, ref(o))
		if err != nil {
			return st, 0, remote("read "+describe(ref(o)), err)
		}
		if cur != nil && cur.Labels[v1alpha1.PluginLabel] != r.p.Name {
			return r.notOurs(ref(o))
		}
		if cur != nil {
			before[ref(o)] = cur.ResourceVersion
		}
	}
	// What is about to be applied is in the inventory first: a pass that dies between
	// applying and writing status (a conflict, a restart) leaves nothing unaccounted for.
	if union := unionOf(st.Applied, r.inventory); len(union) != len(st.Applied) {
		st.Applied = union
		st.Phase = v1alpha1.PluginApplying
		setCondition(st, gen, v1alpha1.PluginConditionApplied, metav1.ConditionFalse, "Applying", fmt.Sprintf("applying %d objects", len(r.inventory)))
		return st, time.Millisecond, nil
	}
	healths := make(map[v1alpha1.AppliedObject]health, len(r.objs))
	seen := make(map[v1alpha1.AppliedObject]string, len(r.objs))
	first := slices.IndexFunc(r.objs, func(o *unstructured.Unstructured) bool { return stage(o.GetKind()) != 0 })
	if first < 0 {
		first = len(r.objs)
	}
	for _, objs := range [][]*unstructured.Unstructured{r.objs[:first], r.objs[first:]} {
		got, failed, err := r.applyStage(ctx, objs)
		if err != nil {
			o := ref(failed)
			st.Phase = v1alpha1.PluginApplying
			setCondition(st, gen, v1alpha1.PluginConditionApplied, metav1.ConditionFalse, "ApplyFailed", fmt.Sprintf("%s: %v", describe(o), err))
			setCondition(st, gen, v1alpha1.PluginConditionDegraded, metav1.ConditionTrue, "ApplyFailed", fmt.Sprintf("%s cannot be applied: %v", describe(o), err))
			return st, 0, remote("apply "+describe(o), err)
		}
		for i, o := range objs {
			healths[ref(o)], seen[ref(o)] = healthOf(got[i]), got[i].GetResourceVersion()
			if prev, ok := before[ref(o)]; !changed && (!ok || prev != got[i].GetResourceVersion()) {
				r.c.repaired(r.p, ref(o), !ok)
			}
		}
		if len(objs) == 0 || stage(objs[0].GetKind()) != 0 {
			continue
		}
		// Definitions must be established before their kinds can be applied: all of them
		// applied, they are waited for together, for a moment, within the pass.
		if pending := r.waitCurrent(ctx, objs, healths, seen); pending != "" {
			// One that stays unestablished (a name clash in the cluster) is looked at less
			// and less.
			st.Phase = v1alpha1.PluginApplying
			setCondition(st, gen, v1alpha1.PluginConditionApplied, metav1.ConditionFalse, "WaitingForDefinitions", pending+" is not established yet")
			waits := 0
			r.c.states.with(r.key, func(ps *pluginState) { waits = ps.waits; ps.waits++ })
			return st, min(progressing<<min(waits, 5), time.Minute), nil
		}
	}
	kept, err := prune(ctx, r.t, r.p.Name, st.Applied, r.inventory)
	if err != nil {
		return st, 0, err
	}
	r.c.reportKept(r.p, st, kept)
	st.Kept = slices.DeleteFunc(st.Kept, func(o v1alpha1.AppliedObject) bool { return slices.Contains(r.inventory, o) })
	st.Applied, st.Version, st.RenderDigest = r.inventory, version, digest
	setCondition(st, gen, v1alpha1.PluginConditionApplied, metav1.ConditionTrue, "Applied", fmt.Sprintf("%d objects applied", len(r.inventory)))
	now := time.Now()
	cluster := types.UID(r.p.Annotations[v1alpha1.PluginClusterUIDAnnotation])
	r.c.states.with(r.key, func(ps *pluginState) {
		ps.digest, ps.lastFull, ps.health, ps.seen, ps.waits = digest, now, healths, seen, 0
		ps.cluster, ps.inventory = cluster, make(map[v1alpha1.AppliedObject]bool, len(r.inventory))
		for _, o := range r.inventory {
			ps.inventory[o] = true
		}
		ps.tidy(now)
	})
	return r.report(ctx, 0)
}

// appliers bounds the objects of one stage applied at once into a cluster.
const appliers = 8

// applyStage applies objects that do not depend on each other, a few at a time. It
// returns what the cluster answered for each, or the first object that failed and why.
func (r *pass) applyStage(ctx context.Context, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, *unstructured.Unstructured, error) {
	got := make([]*unstructured.Unstructured, len(objs))
	errs := make([]error, len(objs))
	var g errgroup.Group
	g.SetLimit(appliers)
	for i, o := range objs {
		g.Go(func() error {
			got[i], errs[i] = r.c.apply(ctx, r.t, o, r.p.Name)
			return nil
		})
	}
	_ = g.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, objs[i], err
		}
	}
	return got, nil, nil
}

// definitionsWait is how long a pass waits for the definitions it applied to be
// established (usually well under a second) before it looks again later.
const definitionsWait = 10 * time.Second

// waitCurrent waits until the objects are Current (definitions established), for at most
// definitionsWait. Every 100 ms it reads the pending ones' metadata, and an object itself
// only once its resourceVersion moved on from what was last read (seen): reading the
// monitoring definitions whole at that pace was megabytes a second of JSON for the
// kube-apiserver to write and this server to read, in the very seconds the kube-apiserver
// spends establishing them. It returns the first one still pending, or "".
func (r *pass) waitCurrent(ctx context.Context, objs []*unstructured.Unstructured, healths map[v1alpha1.AppliedObject]health, seen map[v1alpha1.AppliedObject]string) string {
	deadline := time.Now().Add(definitionsWait)
	for {
		pending := ""
		for _, o := range objs {
			if healths[ref(o)].current() {
				continue
			}
			if m, err := r.t.Meta(ctx, ref(o)); err == nil && m != nil && m.ResourceVersion != seen[ref(o)] {
				if got, err := r.t.Get(ctx, ref(o)); err == nil && got != nil {
					healths[ref(o)], seen[ref(o)] = healthOf(got), got.GetResourceVersion()
				}
			}
			if !healths[ref(o)].current() && pending == "" {
				pending = describe(ref(o))
			}
		}
		if pending == "" || time.Now().After(deadline) {
			return pending
		}
		select {
		case <-ctx.Done():
			return pending
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// digestOf is the digest of a render: its version and objects, labels included.
func digestOf(version string, objs []*unstructured.Unstructured) (string, error) {
	h := sha256.New()
	h.Write([]byte(version))
	for _, o := range objs {
		data, err := json.Marshal(o.Object)
		if err != nil {
			return "", fmt.Errorf("digest %s: %w", describe(ref(o)), err)
		}
		h.Write([]byte{0})
		h.Write(data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
