package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
)

// renewBefore is how long before they expire the components' certificates are issued
// anew (they live pki.DefaultTTL), so that a control plane running for a year keeps working.
const renewBefore = 30 * 24 * time.Hour

// renewIfExpiring issues the components' certificates again and restarts the components
// when they near their end (or no longer match the CAs, host or port).
func (d *Driver) renewIfExpiring(inst *instance) error {
	crts := inst.certs.Load()
	if current, err := leavesCurrent(inst.layout, wantLeaves(crts, inst.ports, d.cfg.ExternalHost)); current || err != nil {
		return err
	}
	if err := writeLeafCerts(inst.layout, crts, inst.ports, d.cfg.ExternalHost); err != nil {
		return fmt.Errorf("renew the certificates of %s: %w", inst.key, err)
	}
	d.restartStarted(inst)
	klog.InfoS("Renewed the control plane's certificates", "cluster", inst.key)
	return nil
}

// restartStarted restarts the components started so far that read their certificates
// only when they start, and marks the change as rolling out. kube-apiserver is replaced
// beside itself (surge.go); the front holds no certificate of its own; etcd reads its
// certificate files at each new connection: clients are never refused.
func (d *Driver) restartStarted(inst *instance) {
	d.restart(inst, provisioner.ControllerManager, provisioner.Scheduler, nodeAgent)
	if inst.components[slotComponent(inst.slot)] != nil {
		d.replaceAPIServer(inst)
	}
}

// restart restarts those of the named components that were started, in place.
func (d *Driver) restart(inst *instance, names ...string) {
	for _, name := range names {
		if sup := inst.components[name]; sup != nil {
			sup.Restart()
			inst.rollingOut = true
		}
	}
}

// RotateCredentials replaces the client CA, re-issues the components' credentials and
// restarts the components that authenticate clients with it, once per token: the token
// is recorded next to the PKI after the restart, so asking again (a status write that
// conflicted, say) does nothing.
func (d *Driver) RotateCredentials(_ context.Context, c *v1alpha1.Cluster, token string) error {
	if token == "" {
		return errors.New("a rotation needs a token")
	}
	inst, err := d.lockInstance(key(c))
	if err != nil {
		return err
	}
	defer inst.mu.Unlock()
	old := inst.certs.Load()
	if old == nil || inst.uid != string(c.UID) {
		return errors.New("the cluster's control plane is not running yet")
	}
	if done, _ := os.ReadFile(inst.layout.rotationFile()); strings.TrimSpace(string(done)) == token {
		return nil
	}
	// The new CA is made under a name of the token's, then promoted: a rotation cut
	// short by a crash finds the same new CA when asked again, so each token replaces the
	// client CA once, and what was issued from the new CA meanwhile stays valid.
	pkiDir := filepath.Join(inst.layout.dir, "pki")
	sum := sha256.Sum256([]byte(token))
	staged := "client-ca.next-" + hex.EncodeToString(sum[:8])
	if _, err := pki.LoadOrCreateCA(pkiDir, staged); err != nil {
		return fmt.Errorf("make the new client CA of %s: %w", key(c), err)
	}
	client, err := pki.PromoteCA(pkiDir, staged, "client-ca")
	if err != nil {
		return fmt.Errorf("replace the client CA of %s: %w", key(c), err)
	}
	crts := *old
	crts.client = client
	if err := writeLeafCerts(inst.layout, &crts, inst.ports, d.cfg.ExternalHost); err != nil {
		return fmt.Errorf("re-issue the credentials of %s: %w", key(c), err)
	}
	inst.certs.Store(&crts)
	// kube-apiserver reloads its client CA file by itself, and is replaced for its
	// kubelet client certificate; the restarts make the controller manager, scheduler
	// and node agent present their new credentials.
	d.restart(inst, nodeAgent, provisioner.Scheduler, provisioner.ControllerManager)
	if inst.components[slotComponent(inst.slot)] != nil {
		d.replaceAPIServer(inst)
	}
	if err := atomicfile.WriteFile(inst.layout.rotationFile(), []byte(token), 0o600); err != nil {
		return fmt.Errorf("record the rotation of %s: %w", key(c), err)
	}
	if err := pki.RemoveCA(pkiDir, staged); err != nil {
		klog.ErrorS(err, "Cannot remove the staged client CA", "cluster", key(c))
	}
	klog.InfoS("Rotated client CA", "cluster", key(c), "token", token)
	return nil
}
