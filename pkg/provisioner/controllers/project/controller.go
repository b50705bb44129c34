// Package project makes Projects real: for each cluster a Project spans, the
// project's namespace and one RoleBinding per role (binding the permission-group
// ClusterRole to the members of that role: their ServiceAccounts and their groups), and on
// the host a Role and RoleBinding that let members who are not tenant members reach the
// project and its clusters. A second reconcile, per cluster, keeps the cluster's
// identities in step with all its administrators and project members: one ServiceAccount
// per user in ucs-users (pruned when no longer used) and the exact group names the proxy
// identity may impersonate. Status says, per cluster, what is in place.
package project

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	informers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions/containerservice/v1alpha1"
	listers "github.com/ucloudstack/containerservice/pkg/generated/listers/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/clusterclient"
	"github.com/ucloudstack/containerservice/pkg/provisioner/reconciler"
)

const (
	// Name and IdentitiesName are the controllers' names in metrics and logs.
	Name           = "project"
	IdentitiesName = "project-identities"
	// resync is how often a project's objects are compared with what it asks for, which
	// repairs what someone changed inside a cluster.
	resync = 30 * time.Second
	// waitForCluster is how soon a project looks again at a cluster that is not running.
	waitForCluster = 5 * time.Second
	// placeRetry is how soon it first tries again to place itself in a running cluster;
	// each further failure in a row doubles the wait, up to maxPlaceRetry.
	placeRetry    = time.Second
	maxPlaceRetry = 30 * time.Second
)

// Controller reconciles Projects, and the identities of the clusters they span.
type Controller struct {
	Projects   *reconciler.Controller
	Identities *reconciler.Controller

	client   versioned.Interface
	host     kubernetes.Interface // nil without a host: no host-side Role
	projects listers.ProjectLister
	clusters listers.ClusterLister
	access   provisioner.Access
	recorder record.EventRecorder

	clients *clusterclient.Cache
	// placements back off per project and cluster while placing keeps failing, so that a
	// cluster that refuses (a broken webhook, a full etcd) is not asked every second.
	placements *flowcontrol.Backoff

	mu sync.Mutex
	// locks serialise the identity sync of each cluster (namespace/name).
	locks map[string]*sync.Mutex
}

// New returns the controllers over the shared informers.
func New(client versioned.Interface, host kubernetes.Interface, projects informers.ProjectInformer, clusters informers.ClusterInformer,
	access provisioner.Access, recorder record.EventRecorder) (*Controller, error) {
	c := &Controller{client: client, host: host, projects: projects.Lister(), clusters: clusters.Lister(), access: access,
		recorder: recorder, clients: clusterclient.New(access, provisioner.PlatformManager), locks: map[string]*sync.Mutex{},
		placements: flowcontrol.NewBackOff(placeRetry, maxPlaceRetry)}
	c.Projects = reconciler.New(Name, reconciler.ReconcilerFunc(c.reconcileProject), projects.Informer().HasSynced, clusters.Informer().HasSynced)
	c.Identities = reconciler.New(IdentitiesName, reconciler.ReconcilerFunc(c.reconcileIdentities), projects.Informer().HasSynced, clusters.Informer().HasSynced)

	// A project's change concerns the project, and the identities of every cluster it
	// spans or spanned.
	if _, err := projects.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.projectChanged(nil, obj) },
		UpdateFunc: func(old, obj any) {
			c.projectChanged(old, obj)
		},
		DeleteFunc: func(obj any) { c.projectChanged(nil, obj) },
	}); err != nil {
		return nil, err
	}
	// A cluster's change (it became Running, its administrators changed) concerns its
	// identities and the projects placed in it.
	if _, err := clusters.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.clusterChanged,
		UpdateFunc: func(_, obj any) { c.clusterChanged(obj) },
		DeleteFunc: c.clusterChanged,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run runs both controllers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	go c.Identities.Run(ctx, workers)
	c.Projects.Run(ctx, workers)
}

func (c *Controller) projectChanged(old, obj any) {
	c.Projects.Enqueue(obj)
	for _, o := range []any{old, obj} {
		p, ok := reconciler.Object[*v1alpha1.Project](o)
		if !ok {
			continue
		}
		for _, cluster := range spannedClusters(p) {
			c.Identities.EnqueueKey(p.Namespace + "/" + cluster)
		}
	}
}

func (c *Controller) clusterChanged(obj any) {
	cl, ok := reconciler.Object[*v1alpha1.Cluster](obj)
	if !ok {
		return
	}
	if cl.DeletionTimestamp != nil {
		c.clients.Forget(cl.UID) // its connections go with it
	}
	c.Identities.EnqueueKey(cl.Namespace + "/" + cl.Name)
	projects, err := c.projects.Projects(cl.Namespace).List(everything)
	if err != nil {
		return
	}
	for _, p := range projects {
		for _, name := range spannedClusters(p) {
			if name == cl.Name {
				c.Projects.Enqueue(p)
				break
			}
		}
	}
}

// spannedClusters are the clusters a project asks for and those its status says it was
// placed in (which it may have left since).
func spannedClusters(p *v1alpha1.Project) []string {
	out := append([]string{}, p.Spec.Clusters...)
	for _, s := range p.Status.Clusters {
		out = append(out, s.Name)
	}
	return out
}

// clientFor returns a client for the cluster's kube-apiserver as the platform manager.
func (c *Controller) clientFor(ctx context.Context, cl *v1alpha1.Cluster) (kubernetes.Interface, error) {
	return c.clients.For(ctx, cl)
}

// lock returns the lock of a cluster's identities.
func (c *Controller) lock(key string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.locks[key] == nil {
		c.locks[key] = &sync.Mutex{}
	}
	return c.locks[key]
}

// running tells whether a project can work in the cluster: its API can be reached and
// it is not being deleted (its namespaces and bindings go with it).
func running(cl *v1alpha1.Cluster) bool {
	return cl.DeletionTimestamp == nil && clusterclient.Reachable(cl)
}

// placeFailed records a failed placement of project in cluster and returns how long to
// wait before the next try: 1 s, then twice as long after each failure in a row, up to
// 30 s.
func (c *Controller) placeFailed(project types.UID, cluster string) time.Duration {
	id := string(project) + "/" + cluster
	c.placements.GC() // entries of projects and clusters gone
	c.placements.Next(id, c.placements.Clock.Now())
	return c.placements.Get(id)
}

// placed forgets the failures of a placement that succeeded.
func (c *Controller) placed(project types.UID, cluster string) {
	c.placements.Reset(string(project) + "/" + cluster)
}
