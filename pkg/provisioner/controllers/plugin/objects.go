package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// statusFailed is kstatus' reading of an object that will not get better on its own.
const statusFailed = status.FailedStatus

// apply server-side applies one object. A field that cannot change (a StorageClass's
// reclaim policy, a Deployment's selector) makes the object be replaced when it holds
// no data: deleted, then applied again.
func (c *Controller) apply(ctx context.Context, t Target, o *unstructured.Unstructured, plugin string) (*unstructured.Unstructured, error) {
	got, err := t.Apply(ctx, o)
	if err == nil || !apierrors.IsInvalid(err) || slices.Contains(keptKinds, o.GetKind()) || !immutable(err) {
		return got, err
	}
	if derr := t.Delete(ctx, ref(o), plugin); derr != nil {
		return nil, fmt.Errorf("replace (%v): %w", err, derr)
	}
	return t.Apply(ctx, o)
}

// keptKinds hold data: they are never replaced.
var keptKinds = []string{"CustomResourceDefinition", "Namespace", "PersistentVolumeClaim"}

// immutable reports whether an Invalid answer is about a field that cannot change.
func immutable(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "field is immutable") || strings.Contains(msg, "are forbidden")
}

// repaired records that an object changed or deleted inside the cluster was put back.
func (c *Controller) repaired(p *v1alpha1.Plugin, o v1alpha1.AppliedObject, deleted bool) {
	how := "changed"
	if deleted {
		how = "deleted"
	}
	driftRepairs.WithLabelValues(p.Spec.Type).Inc()
	c.recorder.Eventf(p, corev1.EventTypeNormal, v1alpha1.PluginDriftRepairedReason, "put back %s (%s inside the cluster)", describe(o), how)
}

// reportKept names in status and in an Event the objects left in the cluster.
func (c *Controller) reportKept(p *v1alpha1.Plugin, st *v1alpha1.PluginStatus, kept []keptObject) {
	for _, k := range kept {
		c.recorder.Eventf(p, corev1.EventTypeNormal, "ObjectKept", "kept %s: %s", describe(k.ref), k.why)
		if !slices.Contains(st.Kept, k.ref) {
			st.Kept = append(st.Kept, k.ref)
		}
	}
}

// healthOf reads an object's health with kstatus.
func healthOf(o *unstructured.Unstructured) health {
	res, err := status.Compute(o)
	if err != nil {
		return health{status: status.UnknownStatus, message: err.Error()}
	}
	return health{status: res.Status, message: res.Message}
}

// stage orders objects: definitions and namespaces (0) before everything else (1).
func stage(kind string) int {
	switch kind {
	case "CustomResourceDefinition", "Namespace":
		return 0
	}
	return 1
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

// joinAll joins what holds an add-on back; setCondition cuts it to a condition's size.
func joinAll(items []string) string { return strings.Join(items, "; ") }

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

func removeCondition(st *v1alpha1.PluginStatus, typ string) {
	meta.RemoveStatusCondition(&st.Conditions, typ)
}

func statusEqual(a, b *v1alpha1.PluginStatus) bool { return apiequality.Semantic.DeepEqual(a, b) }
