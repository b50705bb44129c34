package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/catalog"
)

// sync renders the Plugin and brings its cluster's objects to the render: applied, the
// ones the render no longer has pruned, their health read back. It returns the new
// status and when to look again.
func (c *Controller) sync(ctx context.Context, t Target, p *v1alpha1.Plugin) (*v1alpha1.PluginStatus, time.Duration, error) {
	st := p.Status.DeepCopy()
	gen := p.Generation
	entry := catalog.Lookup(p.Spec.Type)
	enabled := p.Spec.Enabled == nil || *p.Spec.Enabled
	if !enabled || entry == nil {
		kept, err := prune(ctx, t, p.Name, st.Applied, nil)
		if err != nil {
			return st, 0, err
		}
		c.reportKept(p, kept)
		st.Applied, st.Ready = nil, false
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.PluginConditionApplied)
		if entry == nil {
			st.Phase = v1alpha1.PluginFailed
			setReady(st, gen, metav1.ConditionFalse, "NotInCatalog", "type "+p.Spec.Type+" is no longer in the catalog: switch the plugin off or delete it")
		} else {
			st.Phase = v1alpha1.PluginDisabled
			setReady(st, gen, metav1.ConditionFalse, "Disabled", "the plugin is switched off; its objects are removed")
		}
		return st, 0, nil
	}
	version, err := entry.Resolve(p.Spec.Version)
	if err != nil {
		st.Phase = v1alpha1.PluginFailed
		setReady(st, gen, metav1.ConditionFalse, "UnknownVersion", err.Error())
		return st, 0, nil
	}
	objs, err := entry.Render(version, version.Values(p.Spec.Config))
	if errors.Is(err, catalog.ErrNotBuilt) {
		st.Phase = v1alpha1.PluginPending
		setReady(st, gen, metav1.ConditionFalse, "NotBuilt", fmt.Sprintf("the %s add-on %s is not built yet: nothing is applied", p.Spec.Type, version.Version))
		return st, 0, nil
	}
	if err != nil {
		return st, 0, err
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
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int { return stage(a) - stage(b) })

	// An object of the same name that this Plugin did not make is never taken over.
	for _, o := range objs {
		cur, err := t.Get(ctx, ref(o))
		if err != nil {
			return st, 0, remote("read "+describe(ref(o)), err)
		}
		if cur != nil && cur.GetLabels()[v1alpha1.PluginLabel] != p.Name {
			st.Phase = v1alpha1.PluginFailed
			setReady(st, gen, metav1.ConditionFalse, "NotOurs", describe(ref(o))+" exists and was not made by this plugin: it is never taken over")
			return st, notOursRetry, nil
		}
	}
	inventory := make([]v1alpha1.AppliedObject, len(objs))
	for i, o := range objs {
		inventory[i] = ref(o)
	}
	// What is about to be applied is in the inventory first: a pass that dies between
	// applying and writing status (a conflict, a restart) leaves nothing unaccounted for.
	if union := unionOf(st.Applied, inventory); len(union) != len(st.Applied) {
		st.Applied = union
		st.Phase = v1alpha1.PluginApplying
		setCondition(st, gen, v1alpha1.PluginConditionApplied, metav1.ConditionFalse, "Applying", fmt.Sprintf("applying %d objects", len(inventory)))
		return st, time.Millisecond, nil
	}
	var applied []*unstructured.Unstructured
	for _, o := range objs {
		got, err := t.Apply(ctx, o)
		if err != nil {
			st.Phase = v1alpha1.PluginApplying
			setCondition(st, gen, v1alpha1.PluginConditionApplied, metav1.ConditionFalse, "ApplyFailed", fmt.Sprintf("%s: %v", describe(ref(o)), err))
			return st, 0, remote("apply "+describe(ref(o)), err)
		}
		applied = append(applied, got)
		if stage(o) == 0 {
			// A definition must be established before its kinds can be applied.
			if res, err := status.Compute(got); err != nil || res.Status != status.CurrentStatus {
				st.Phase = v1alpha1.PluginApplying
				setCondition(st, gen, v1alpha1.PluginConditionApplied, metav1.ConditionFalse, "WaitingForDefinitions", describe(ref(o))+" is not established yet")
				return st, progressing, nil
			}
		}
	}
	kept, err := prune(ctx, t, p.Name, st.Applied, inventory)
	if err != nil {
		return st, 0, err
	}
	c.reportKept(p, kept)
	st.Applied, st.Version = inventory, version.Version
	setCondition(st, gen, v1alpha1.PluginConditionApplied, metav1.ConditionTrue, "Applied", fmt.Sprintf("%d objects applied", len(inventory)))

	var waiting []string
	for _, o := range applied {
		res, err := status.Compute(o)
		if err != nil {
			waiting = append(waiting, describe(ref(o))+": "+err.Error())
		} else if res.Status != status.CurrentStatus {
			waiting = append(waiting, fmt.Sprintf("%s is %s: %s", describe(ref(o)), res.Status, res.Message))
		}
	}
	st.Ready = len(waiting) == 0
	if st.Ready {
		st.Phase = v1alpha1.PluginReady
		setReady(st, gen, metav1.ConditionTrue, "Current", "every object is current")
		return st, resync, nil
	}
	st.Phase = v1alpha1.PluginApplying
	setReady(st, gen, metav1.ConditionFalse, "Progressing", strings.Join(waiting, "; "))
	return st, progressing, nil
}

// stage orders objects: definitions and namespaces (0) before everything else (1).
func stage(o *unstructured.Unstructured) int {
	switch o.GetKind() {
	case "CustomResourceDefinition", "Namespace":
		return 0
	}
	return 1
}

// keptKinds are never pruned: a definition takes every instance with it, a namespace
// everything in it, a claim its data. They are left in place and named in an Event.
var keptKinds = []string{"CustomResourceDefinition", "Namespace", "PersistentVolumeClaim"}

// prune deletes the objects of old that keep does not list, when they still carry this
// Plugin's label; the kinds that may hold data are kept and returned.
func prune(ctx context.Context, t Target, plugin string, old, keep []v1alpha1.AppliedObject) (kept []v1alpha1.AppliedObject, err error) {
	for _, o := range old {
		if slices.Contains(keep, o) {
			continue
		}
		if slices.Contains(keptKinds, o.Kind) {
			kept = append(kept, o)
			continue
		}
		if err := t.Delete(ctx, o, plugin); err != nil {
			return kept, remote("remove "+describe(o), err)
		}
	}
	return kept, nil
}

// remote marks an error of the user cluster: it is reported, and retried with backoff,
// but never taken for a conflict of the management side's own objects (a webhook in the
// tenant's cluster may answer 409 to anything).
func remote(what string, err error) error {
	return fmt.Errorf("%s: %s", what, err.Error())
}

// unionOf is old with the objects of add it lacks appended.
func unionOf(old, add []v1alpha1.AppliedObject) []v1alpha1.AppliedObject {
	union := slices.Clone(old)
	for _, o := range add {
		if !slices.Contains(union, o) {
			union = append(union, o)
		}
	}
	return union
}

func ref(o *unstructured.Unstructured) v1alpha1.AppliedObject {
	return v1alpha1.AppliedObject{APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
}

func describe(o v1alpha1.AppliedObject) string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

func setCondition(st *v1alpha1.PluginStatus, gen int64, typ string, s metav1.ConditionStatus, reason, msg string) {
	if len(msg) > 1024 {
		cut := 1021
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen})
}

func setReady(st *v1alpha1.PluginStatus, gen int64, s metav1.ConditionStatus, reason, msg string) {
	setCondition(st, gen, v1alpha1.PluginConditionReady, s, reason, msg)
}

func statusEqual(a, b *v1alpha1.PluginStatus) bool { return apiequality.Semantic.DeepEqual(a, b) }
