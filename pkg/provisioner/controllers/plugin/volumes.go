package plugin

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/clusterclient"
	"github.com/ucloudstack/containerservice/pkg/provisioner/volumes"
)

// volumeProvisioners runs the csi add-on's volume provisioner of each cluster that has
// the add-on enabled, its volumes in the directory the driver keeps for the cluster.
type volumeProvisioners struct {
	dirs    provisioner.Volumes
	clients *clusterclient.Cache
	manager *volumes.Manager

	mu sync.Mutex
	// gone are the clusters deleted lately: a reconcile that read one just before must
	// not start its provisioner again.
	gone goneClusters
}

func newVolumeRunner(dirs provisioner.Volumes, clients *clusterclient.Cache) *volumeProvisioners {
	return &volumeProvisioners{dirs: dirs, clients: clients, manager: volumes.NewManager(), gone: goneClusters{}}
}

// Ensure runs the cluster's provisioner, again with a new client when the credential
// changed (the provisioner's informers watch through it: a client without a bound on
// its requests).
func (v *volumeProvisioners) Ensure(ctx context.Context, cl *v1alpha1.Cluster) error {
	// Held throughout: a Forget that comes meanwhile stops what this starts.
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gone.has(cl.UID) {
		return nil
	}
	dir, err := v.dirs.VolumeDir(cl)
	if err != nil {
		return fmt.Errorf("volume directory of %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	client, err := v.clients.ForWatch(ctx, cl)
	if err != nil {
		return err
	}
	return v.manager.Ensure(cl.UID, client, dir)
}

func (v *volumeProvisioners) Stop(uid types.UID) { v.manager.Stop(uid) }

func (v *volumeProvisioners) Forget(uid types.UID) {
	v.mu.Lock()
	v.gone.add(uid, time.Now())
	v.mu.Unlock()
	v.manager.Stop(uid)
}

func (v *volumeProvisioners) StopAll() { v.manager.StopAll() }
