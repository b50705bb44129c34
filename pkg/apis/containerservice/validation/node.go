package validation

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// platformLabels are the node labels the platform sets from the rest of the spec (a
// kubelet's own, the GPU's from spec.resources.gpu, and the mark its node agent selects
// by): a spec label of the same key would be overwritten, or would hand the node to the
// agent, so it is refused rather than silently dropped.
var platformLabels = sets.New("kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
	v1alpha1.ManagedByLabel, v1alpha1.GPUProductLabel, v1alpha1.GPUCountLabel)

// kubernetesTaintPrefixes are the taint keys Kubernetes itself sets and removes
// (not-ready, unreachable, unschedulable, pressure): a spec taint there would be fought
// over with the cluster's controller manager. Cordon is spec.unschedulable.
var kubernetesTaintPrefixes = []string{"node.kubernetes.io/", "node.cloudprovider.kubernetes.io/"}

var taintEffects = sets.New(string(cs.TaintEffectNoSchedule), string(cs.TaintEffectPreferNoSchedule), string(cs.TaintEffectNoExecute))

// ValidateNode checks a Node being created.
func ValidateNode(n *cs.Node) field.ErrorList {
	errs := validateObjectMeta(&n.ObjectMeta)
	return append(errs, validateNodeSpec(&n.Spec, nil, field.NewPath("spec"))...)
}

// ValidateNodeUpdate checks a change of a Node's spec and metadata.
func ValidateNodeUpdate(n, old *cs.Node) field.ErrorList {
	errs := validateObjectMetaUpdate(&n.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateNodeSpec(&n.Spec, &old.Spec, field.NewPath("spec"))...)
	return append(errs, validateImmutable(n.Spec.ClusterName, old.Spec.ClusterName, field.NewPath("spec", "clusterName"))...)
}

// ValidateNodeStatusUpdate checks what a status writer reports.
func ValidateNodeStatusUpdate(n, old *cs.Node) field.ErrorList {
	errs := validateObjectMetaUpdate(&n.ObjectMeta, &old.ObjectMeta)
	fld := field.NewPath("status")
	errs = append(errs, validateConditions(n.Status.Conditions, fld.Child("conditions"))...)
	errs = append(errs, validateObservedGeneration(n.Status.ObservedGeneration, fld.Child("observedGeneration"))...)
	errs = append(errs, validateNonNegative(int64(n.Status.Pods), fld.Child("pods"))...)
	for name, q := range n.Status.Allocatable {
		errs = append(errs, validateNonNegativeQuantity(q, fld.Child("allocatable").Key(name))...)
	}
	if d := n.Status.Drain; d != nil {
		errs = append(errs, validateNonNegative(int64(d.PodsRemaining), fld.Child("drain", "podsRemaining"))...)
	}
	return errs
}

// validateNodeSpec checks a Node's spec; old is the stored one on update (nil on create):
// a reserved label or taint key it already had is let through, so that a Node stored
// before the rule came can still be changed and deleted.
func validateNodeSpec(spec, old *cs.NodeSpec, fld *field.Path) field.ErrorList {
	var oldLabels map[string]string
	oldTaints := sets.New[string]()
	if old != nil {
		oldLabels = old.Labels
		for _, t := range old.Taints {
			oldTaints.Insert(t.Key)
		}
	}
	errs := validateClusterRef(spec.ClusterName, fld.Child("clusterName"))
	res := fld.Child("resources")
	errs = append(errs, validatePositiveQuantity(spec.Resources.CPU, res.Child("cpu"))...)
	errs = append(errs, validatePositiveQuantity(spec.Resources.Memory, res.Child("memory"))...)
	if p := spec.Resources.Pods; p < 1 || p > maxNodePods {
		errs = append(errs, field.Invalid(res.Child("pods"), p, fmt.Sprintf("must be between 1 and %d", maxNodePods)))
	}
	errs = append(errs, validateDrainTimeout(spec.DrainTimeout, fld.Child("drainTimeout"))...)
	if gpu := spec.Resources.GPU; gpu != nil {
		gpuPath := res.Child("gpu")
		if gpu.Count < 1 {
			errs = append(errs, field.Invalid(gpuPath.Child("count"), gpu.Count, "must be at least 1; leave gpu out for a node without GPUs"))
		}
		if gpu.Model != "" {
			for _, msg := range validation.IsValidLabelValue(gpu.Model) {
				errs = append(errs, field.Invalid(gpuPath.Child("model"), gpu.Model, msg))
			}
		}
	}
	errs = append(errs, metav1validation.ValidateLabels(spec.Labels, fld.Child("labels"))...)
	for _, k := range sets.List(sets.KeySet(spec.Labels)) {
		if _, had := oldLabels[k]; platformLabels.Has(k) && !had {
			errs = append(errs, field.Forbidden(fld.Child("labels").Key(k), "set by the platform from the rest of the spec"))
		}
	}
	seen := sets.New[string]()
	for i, t := range spec.Taints {
		p := fld.Child("taints").Index(i)
		for _, prefix := range kubernetesTaintPrefixes {
			if strings.HasPrefix(t.Key, prefix) && !oldTaints.Has(t.Key) {
				errs = append(errs, field.Forbidden(p.Child("key"), fmt.Sprintf("taints under %s are set and removed by Kubernetes; use spec.unschedulable to cordon", prefix)))
			}
		}
		for _, msg := range validation.IsQualifiedName(t.Key) {
			errs = append(errs, field.Invalid(p.Child("key"), t.Key, msg))
		}
		for _, msg := range validation.IsValidLabelValue(t.Value) {
			errs = append(errs, field.Invalid(p.Child("value"), t.Value, msg))
		}
		if !taintEffects.Has(string(t.Effect)) {
			errs = append(errs, field.NotSupported(p.Child("effect"), t.Effect, sets.List(taintEffects)))
		}
		if k := t.Key + ":" + string(t.Effect); seen.Has(k) {
			errs = append(errs, field.Duplicate(p, t.Key))
		} else {
			seen.Insert(k)
		}
	}
	return errs
}

// maxNodePods bounds a node's pod capacity (the kubelet's own limit is far lower in
// practice); maxDrainTimeout bounds a drain, so that a deletion always ends.
const (
	maxNodePods     = 10000
	maxDrainTimeout = 24 * time.Hour
)

// validateDrainTimeout checks a drain timeout: positive and at most a day.
func validateDrainTimeout(d *metav1.Duration, fld *field.Path) field.ErrorList {
	if d != nil && (d.Duration <= 0 || d.Duration > maxDrainTimeout) {
		return field.ErrorList{field.Invalid(fld, d.Duration.String(), "must be greater than zero and at most 24h")}
	}
	return nil
}

func validatePositiveQuantity(q resource.Quantity, fld *field.Path) field.ErrorList {
	if q.Sign() <= 0 {
		return field.ErrorList{field.Invalid(fld, q.String(), "must be greater than zero")}
	}
	return nil
}

func validateNonNegativeQuantity(q resource.Quantity, fld *field.Path) field.ErrorList {
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(fld, q.String(), "must not be negative")}
	}
	return nil
}

func validateNonNegative(v int64, fld *field.Path) field.ErrorList {
	if v < 0 {
		return field.ErrorList{field.Invalid(fld, v, "must not be negative")}
	}
	return nil
}
