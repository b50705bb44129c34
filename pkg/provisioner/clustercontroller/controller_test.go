package clustercontroller

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

func healthy() *provisioner.Observation {
	obs := &provisioner.Observation{Components: map[string]provisioner.Health{}, Internal: "https://127.0.0.1:1", External: "https://ext:1", Version: "v1.37.1"}
	for _, c := range provisioner.Components {
		obs.Components[c] = provisioner.Health{Healthy: true}
	}
	return obs
}

func cluster() *v1alpha1.Cluster {
	return &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod", Generation: 3}, Status: v1alpha1.ClusterStatus{Phase: v1alpha1.ClusterPending}}
}

func TestDesiredStatus(t *testing.T) {
	down := healthy()
	down.Components[provisioner.Etcd] = provisioner.Health{Message: "not running: etcd exited (exit status 1)"}

	tests := map[string]struct {
		obs       *provisioner.Observation
		err       error
		phase     v1alpha1.ClusterPhase
		ready     metav1.ConditionStatus
		reason    string
		inMessage string
	}{
		"all healthy":        {healthy(), nil, v1alpha1.ClusterRunning, metav1.ConditionTrue, "ControlPlaneReady", "every control plane component"},
		"one component down": {down, nil, v1alpha1.ClusterProvisioning, metav1.ConditionFalse, "ComponentsUnhealthy", "Etcd"},
		"missing binaries": {nil, &provisioner.PermanentError{Err: errors.New("kube-apiserver for Kubernetes v1.37.1 is missing from /x: run hack/kube-binaries.sh")},
			v1alpha1.ClusterFailed, metav1.ConditionFalse, "ProvisioningFailed", "run hack/kube-binaries.sh"},
		"transient error before any observation": {nil, errors.New("disk full"), v1alpha1.ClusterProvisioning, metav1.ConditionFalse, "ProvisioningError", "disk full (retrying)"},
		"bootstrap failed":                       {healthy(), errors.New("apply namespace ucs-users: boom"), v1alpha1.ClusterProvisioning, metav1.ConditionFalse, "BootstrapFailed", "ucs-users"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := desiredStatus(cluster(), tc.obs, tc.err)
			if st.Phase != tc.phase {
				t.Errorf("phase %s, want %s", st.Phase, tc.phase)
			}
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d, want 3", st.ObservedGeneration)
			}
			ready := meta.FindStatusCondition(st.Conditions, ConditionReady)
			if ready == nil || ready.Status != tc.ready || ready.Reason != tc.reason || !strings.Contains(ready.Message, tc.inMessage) {
				t.Errorf("Ready condition %+v, want %s %s containing %q", ready, tc.ready, tc.reason, tc.inMessage)
			}
		})
	}

	st := desiredStatus(cluster(), down, nil)
	if c := meta.FindStatusCondition(st.Conditions, "EtcdReady"); c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "exit status 1") {
		t.Errorf("EtcdReady %+v", c)
	}
	if st.Endpoints.External != "https://ext:1" || st.Version != "v1.37.1" {
		t.Errorf("endpoints %+v version %s", st.Endpoints, st.Version)
	}
}
