package cluster

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

// sweepPeriod is how often the driver's control planes are compared with the Clusters.
const sweepPeriod = time.Minute

var (
	quarantined = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: "containerservice", Subsystem: "cluster_controller", Name: "quarantined_total",
		Help:           "Control planes moved to the quarantine because no Cluster accounts for them (nothing is deleted).",
		StabilityLevel: metrics.ALPHA,
	})
	unaccounted = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "containerservice", Subsystem: "cluster_controller", Name: "unaccounted_running_control_planes",
		Help:           "Control planes that run although no Cluster accounts for them; they are left running.",
		StabilityLevel: metrics.ALPHA,
	})
)

func init() {
	legacyregistry.MustRegister(quarantined, unaccounted)
}

func (c *Controller) sweepEvery(ctx context.Context) {
	wait.UntilWithContext(ctx, c.sweep, sweepPeriod)
}

// sweep finds control planes no Cluster accounts for (no Cluster of that namespace, name
// and UID): data whose owner may still exist somewhere (the server runs on a wrong or
// restored etcd, say). Nothing is deleted: a stopped one is moved to the quarantine and
// comes back when its Cluster does; a running one keeps running, reported.
func (c *Controller) sweep(ctx context.Context) {
	held, err := c.driver.Held()
	if err != nil {
		klog.ErrorS(err, "Cannot list the driver's control planes")
		return
	}
	running := 0
	for _, h := range held {
		key := h.Namespace + "/" + h.Name
		if cl, err := c.lister.Clusters(h.Namespace).Get(h.Name); err == nil && string(cl.UID) == h.UID {
			continue
		}
		c.mu.Lock()
		deleting := h.UID != "" && c.deleted[key] == types.UID(h.UID)
		c.mu.Unlock()
		if deleting {
			continue // a proven deletion of this very control plane is on its way
		}
		ref := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: h.Name, UID: types.UID(h.UID)}}
		if h.Running {
			running++
			c.warnOnce(key, ref)
			continue
		}
		dest, err := c.driver.Quarantine(ctx, h)
		switch {
		case errors.Is(err, provisioner.ErrRunning):
			running++
			c.warnOnce(key, ref)
		case err != nil:
			klog.ErrorS(err, "Cannot quarantine an unaccounted control plane", "cluster", key, "uid", h.UID)
		case dest != "":
			quarantined.Inc()
			klog.InfoS("Quarantined", "cluster", key, "uid", h.UID, "to", dest)
			c.recorder.Eventf(ref, corev1.EventTypeWarning, "Quarantined",
				"No Cluster with uid %s exists, so its control plane's data was moved to the quarantine and kept; it comes back if the Cluster does", h.UID)
		}
	}
	unaccounted.Set(float64(running))
}

// warnOnce reports a running control plane no Cluster accounts for, once per server run.
func (c *Controller) warnOnce(key string, ref *v1alpha1.Cluster) {
	c.mu.Lock()
	seen := c.warned[key]
	c.warned[key] = true
	c.mu.Unlock()
	if seen {
		return
	}
	klog.InfoS("A control plane runs that no Cluster accounts for; leaving it running", "cluster", key, "uid", ref.UID)
	c.recorder.Eventf(ref, corev1.EventTypeWarning, "Unaccounted",
		"The control plane of uid %s runs but no such Cluster exists; it is left running and nothing is deleted. Check the server's etcd, or stop its processes to have it quarantined", ref.UID)
}
