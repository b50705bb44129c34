package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
)

// EnsureNodeAgent runs the cluster's node agent (kwok) while run is true, supervised
// like the control plane (restarted when it dies, adopted after a server restart, stopped
// with the cluster), and stops it when run is false: a cluster without nodes spends no
// memory on it. It reports the agent's health.
func (d *Driver) EnsureNodeAgent(ctx context.Context, c *v1alpha1.Cluster, run bool) (provisioner.Health, error) {
	url, caFile, h, err := d.ensureNodeAgent(c, run)
	if err != nil || url == "" {
		return h, err
	}
	// Probed without the cluster's lock: a slow answer holds up nothing else.
	if err := probe(ctx, url, caFile, "", ""); err != nil {
		return provisioner.Health{Message: err.Error()}, nil
	}
	return provisioner.Health{Healthy: true}, nil
}

// ensureNodeAgent starts, adopts or stops the agent under the cluster's lock, and returns
// where to probe it ("" with the health to report when there is nothing to probe).
func (d *Driver) ensureNodeAgent(c *v1alpha1.Cluster, run bool) (url, caFile string, h provisioner.Health, err error) {
	inst, err := d.lockInstance(key(c))
	if err != nil {
		return "", "", provisioner.Health{}, err
	}
	defer inst.mu.Unlock()
	if inst.certs.Load() == nil || inst.uid != string(c.UID) {
		return "", "", provisioner.Health{}, errors.New("the cluster's control plane is not running yet")
	}
	record := inst.layout.record(processNames[nodeAgent])
	if !run {
		if sup := inst.components[nodeAgent]; sup != nil {
			sup.Stop()
			delete(inst.components, nodeAgent)
			klog.InfoS("Stopped the node agent: the cluster has no nodes", "cluster", inst.key)
		}
		// One a previous server started and nobody adopted.
		if err := supervisor.StopRecorded(record, componentStopGrace); err != nil {
			return "", "", provisioner.Health{}, fmt.Errorf("stop the node agent of %s: %w", inst.key, err)
		}
		return "", "", provisioner.Health{Message: "not running: the cluster has no nodes"}, nil
	}
	spec := inst.specs[nodeAgent]
	if _, err := os.Stat(spec.Binary); err != nil {
		return "", "", provisioner.Health{}, &provisioner.PermanentError{Err: fmt.Errorf("the node agent %s is missing: run hack/kube-binaries.sh on the server's machine", spec.Binary)}
	}
	if inst.components[nodeAgent] == nil {
		d.resume(inst, nodeAgent)
		if inst.components[nodeAgent] == nil {
			return "", "", provisioner.Health{Message: fmt.Sprintf("cannot adopt or start: %v", inst.startErr[nodeAgent])}, nil
		}
	}
	return "https://127.0.0.1:" + strconv.Itoa(inst.ports[portNodeAgent]) + "/healthz", inst.layout.pki("ca.crt"), provisioner.Health{}, nil
}
