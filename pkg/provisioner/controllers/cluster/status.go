package cluster

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

// desiredStatus is the status that reports obs, or the error that kept the driver from
// observing anything, and what failed after (applyErr: a rotation, applying the
// platform's objects; a *stepError names the reason).
//
// Phases: Provisioning until the cluster first runs; Running while every component is
// healthy; Updating while a running cluster rolls out a change (rotation, renewal, a new
// configuration), Ready still True when it serves meanwhile (a kube-apiserver replaced
// behind the front); Failed when provisioning cannot succeed without an operator. Component
// conditions turn Unknown when nothing could be observed, rather than keep a stale True.
func desiredStatus(cl *v1alpha1.Cluster, obs *provisioner.Observation, ensureErr, applyErr error) v1alpha1.ClusterStatus {
	status := *cl.Status.DeepCopy()
	status.ObservedGeneration = cl.Generation
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: cl.Generation})
	}
	unknown := func(msg string) {
		for _, comp := range provisioner.Components {
			set(provisioner.ConditionTypes[comp], metav1.ConditionUnknown, "NotObserved", msg)
		}
	}
	wasRunning := running(cl)
	var permanent *provisioner.PermanentError
	switch {
	case errors.As(ensureErr, &permanent):
		status.Phase = v1alpha1.ClusterFailed
		set(v1alpha1.ClusterConditionReady, metav1.ConditionFalse, "ProvisioningFailed", ensureErr.Error())
		unknown("the control plane cannot run: " + ensureErr.Error())
		return status
	case obs == nil:
		if status.Phase == "" || status.Phase == v1alpha1.ClusterPending {
			status.Phase = v1alpha1.ClusterProvisioning
		}
		msg := fmt.Sprintf("%v (retrying)", ensureErr)
		set(v1alpha1.ClusterConditionReady, metav1.ConditionUnknown, "NotObserved", msg)
		unknown(msg)
		return status
	}

	status.Version = obs.Version
	status.Endpoints = v1alpha1.ClusterEndpoints{Internal: obs.Internal, External: obs.External}
	var unhealthy []string
	for _, comp := range provisioner.Components {
		h := obs.Components[comp]
		if h.Healthy {
			set(provisioner.ConditionTypes[comp], metav1.ConditionTrue, "Healthy", comp+" answers its health check")
		} else {
			set(provisioner.ConditionTypes[comp], metav1.ConditionFalse, "Unhealthy", h.Message)
			unhealthy = append(unhealthy, comp)
		}
	}
	switch {
	case len(unhealthy) == 0 && ensureErr == nil && applyErr == nil:
		status.Phase = v1alpha1.ClusterRunning
		if wasRunning && obs.Updating {
			status.Phase = v1alpha1.ClusterUpdating
		}
		set(v1alpha1.ClusterConditionReady, metav1.ConditionTrue, "ControlPlaneReady", "every control plane component is healthy and a workload can be applied")
	case len(unhealthy) == 0:
		status.Phase = v1alpha1.ClusterProvisioning
		if wasRunning {
			status.Phase = v1alpha1.ClusterUpdating
		}
		reason := "ProvisioningError"
		var step *stepError
		if errors.As(applyErr, &step) {
			reason = step.reason
		}
		set(v1alpha1.ClusterConditionReady, metav1.ConditionFalse, reason, errors.Join(ensureErr, applyErr).Error())
	default:
		status.Phase = v1alpha1.ClusterProvisioning
		if wasRunning && obs.Updating {
			status.Phase = v1alpha1.ClusterUpdating
		}
		set(v1alpha1.ClusterConditionReady, metav1.ConditionFalse, "ComponentsUnhealthy", fmt.Sprintf("not healthy: %v; see the component conditions", unhealthy))
	}
	return status
}

// readyCondition returns the message of the Ready condition.
func readyCondition(status v1alpha1.ClusterStatus) string {
	if c := meta.FindStatusCondition(status.Conditions, v1alpha1.ClusterConditionReady); c != nil {
		return c.Message
	}
	return ""
}
