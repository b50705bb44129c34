// Package clusterclient keeps the clients controllers use to reach inside user clusters,
// one per cluster, built from the driver's access interface (never from files) and kept
// while the driver's credential stays the same, so that connections are reused across
// reconciles instead of a TLS handshake each.
package clusterclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/restmapper"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

// requestTimeout bounds every request into a user cluster: a kube-apiserver that
// accepts connections but never answers must not hold a controller's worker forever.
const requestTimeout = 30 * time.Second

// Cache hands out one client per cluster as one platform identity.
type Cache struct {
	access provisioner.Access
	id     provisioner.Identity

	mu      sync.Mutex
	clients map[types.UID]entry
}

type entry struct {
	cert []byte
	// client bounds every request; watcher does not, for watches that last.
	client, watcher kubernetes.Interface
	// dynamic reaches any kind, mapper maps kinds to resources through discovery (the
	// add-ons' objects, their CRDs' kinds included).
	dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	// metadata reads and watches any kind's metadata alone, without the bound on a
	// request (watches last; lists of metadata are small).
	metadata metadata.Interface
}

// New returns a cache of clients acting as id.
func New(access provisioner.Access, id provisioner.Identity) *Cache {
	return &Cache{access: access, id: id, clients: map[types.UID]entry{}}
}

// For returns a client for the cluster's kube-apiserver, the same one while the
// driver's credential is unchanged. Each of its requests ends within 30 s.
func (c *Cache) For(ctx context.Context, cl *v1alpha1.Cluster) (kubernetes.Interface, error) {
	e, err := c.entry(ctx, cl)
	return e.client, err
}

// ForWatch is For without the bound on a request, for informers (whose watches last);
// a new one is handed out when the credential changes.
func (c *Cache) ForWatch(ctx context.Context, cl *v1alpha1.Cluster) (kubernetes.Interface, error) {
	e, err := c.entry(ctx, cl)
	return e.watcher, err
}

func (c *Cache) entry(ctx context.Context, cl *v1alpha1.Cluster) (entry, error) {
	cfg, err := c.access.RESTConfig(ctx, cl, c.id)
	if err != nil {
		return entry{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.clients[cl.UID]; ok && string(e.cert) == string(cfg.CertData) {
		return e, nil
	}
	// The cluster's kube-apiserver is the platform's own: work for hundreds of people or
	// nodes goes at the speed it takes, not at client-go's default 5 per second.
	cfg.QPS, cfg.Burst = 1000, 1000
	watcher, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return entry{}, fmt.Errorf("client for %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	cfg.Timeout = requestTimeout
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return entry{}, fmt.Errorf("client for %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return entry{}, fmt.Errorf("client for %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	cfg.Timeout = 0
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return entry{}, fmt.Errorf("client for %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	e := entry{cert: cfg.CertData, client: client, watcher: watcher, dynamic: dyn, mapper: mapper, metadata: meta}
	c.clients[cl.UID] = e
	return e, nil
}

// Dynamic returns a client for any kind in the cluster, bounded like For, and a mapper
// from kinds to resources that reads the cluster's discovery (Reset it when a kind is
// not found: a CRD may have been added since).
func (c *Cache) Dynamic(ctx context.Context, cl *v1alpha1.Cluster) (dynamic.Interface, *restmapper.DeferredDiscoveryRESTMapper, error) {
	e, err := c.entry(ctx, cl)
	return e.dynamic, e.mapper, err
}

// Metadata returns a client for the metadata of any kind in the cluster, without a bound
// on a request (for watches), the same one while the driver's credential is unchanged.
func (c *Cache) Metadata(ctx context.Context, cl *v1alpha1.Cluster) (metadata.Interface, error) {
	e, err := c.entry(ctx, cl)
	return e.metadata, err
}

// Forget drops the client of a cluster that is gone.
func (c *Cache) Forget(uid types.UID) {
	c.mu.Lock()
	delete(c.clients, uid)
	c.mu.Unlock()
}

// Reachable tells whether a cluster's API can be reached: its phase is Running, or
// Updating (a change the driver rolls out keeps the API serving). The controllers that
// work inside user clusters wait, rather than fail, while it is not.
func Reachable(cl *v1alpha1.Cluster) bool {
	return cl.Status.Phase == v1alpha1.ClusterRunning || cl.Status.Phase == v1alpha1.ClusterUpdating
}
