package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// waitingForDefaults is the Ready condition's reason while a new cluster whose control
// plane runs waits for what a workload needs (usercluster.Usable).
const waitingForDefaults = "WaitingForDefaults"

// defaultsStuck is how long a cluster waits for kube-controller-manager's defaults before
// its condition says that something is wrong, and it is looked at less often.
const defaultsStuck = time.Minute

// defaultsSeen reports whether what a workload needs was seen in the cluster once: then
// it is kube-controller-manager's to keep, and never waited for again (a tenant who
// breaks it inside does not take the cluster out of the platform's hands). A cluster that
// ran before the condition existed counts as seen.
func defaultsSeen(cl *v1alpha1.Cluster) bool {
	return meta.IsStatusConditionTrue(cl.Status.Conditions, v1alpha1.ClusterConditionDefaultsReady) ||
		(meta.FindStatusCondition(cl.Status.Conditions, v1alpha1.ClusterConditionDefaultsReady) == nil && running(cl))
}

// waitingSince is when the cluster started waiting for its defaults, or zero.
func waitingSince(cl *v1alpha1.Cluster) time.Time {
	if c := meta.FindStatusCondition(cl.Status.Conditions, v1alpha1.ClusterConditionReady); c != nil && c.Reason == waitingForDefaults {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

// pollDefaults is how soon a cluster waiting for its defaults is looked at again: at once
// for the first seconds (kube-controller-manager makes them within a second or two of its
// start), then less and less.
func pollDefaults(cl *v1alpha1.Cluster) time.Duration {
	since := waitingSince(cl)
	switch {
	case since.IsZero() || time.Since(since) < 5*time.Second:
		return 250 * time.Millisecond
	case time.Since(since) < defaultsStuck:
		return time.Second
	}
	return pollUnready
}

// waitUsable returns a waiting step naming what a workload still waits for, nil when
// nothing (recording it in the DefaultsReady condition by the caller), or the error that
// kept it from looking.
func (c *Controller) waitUsable(ctx context.Context, cl *v1alpha1.Cluster) error {
	client, err := c.clients.For(ctx, cl)
	if err != nil {
		return &stepError{reason: "DefaultsUnreadable", err: fmt.Errorf("look for what a workload needs: %w", err)}
	}
	waiting, err := c.usable(ctx, client)
	if err != nil {
		return &stepError{reason: "DefaultsUnreadable", err: fmt.Errorf("look for what a workload needs: %w", err)}
	}
	if waiting == "" {
		return nil
	}
	msg := "the control plane runs; waiting for " + waiting
	if since := waitingSince(cl); !since.IsZero() && time.Since(since) >= defaultsStuck {
		msg = fmt.Sprintf("kube-controller-manager has not made %s in %s: see its log (logs/kube-controller-manager.log)", waiting, time.Since(since).Round(time.Second))
	}
	return &stepError{reason: waitingForDefaults, err: errors.New(msg)}
}

// running reports whether the cluster has run before (its phase Running or Updating).
func running(cl *v1alpha1.Cluster) bool {
	return cl.Status.Phase == v1alpha1.ClusterRunning || cl.Status.Phase == v1alpha1.ClusterUpdating
}
