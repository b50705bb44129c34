package proxy

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// Members indexes, from the Projects (fed by an informer), who is a member of a project
// placed in each cluster. For each project and cluster it keeps two sets: the members the
// spec names now, and the members as of the last time the project's bindings converged in
// that cluster. A caller in the first set and not in the second is a new member whose
// bindings are still being put in place: the proxy answers 503 with Retry-After rather
// than forward a request the cluster would refuse. Someone removed from the spec is out
// at once, whatever the cluster still holds.
type Members struct {
	mu sync.RWMutex
	// byCluster maps namespace/cluster to the projects placed in that cluster.
	byCluster map[string]map[types.UID]*placement
	// clustersOf remembers where each project was placed, to forget it on change.
	clustersOf map[types.UID][]string
}

// placement is one project in one cluster.
type placement struct {
	namespace             string           // the project's namespace in the cluster
	users, groups         sets.Set[string] // named by the spec now
	readyUsers, readyGrps sets.Set[string] // as of the last convergence
}

// NewMembers returns an empty index; Handler feeds it.
func NewMembers() *Members {
	return &Members{byCluster: map[string]map[types.UID]*placement{}, clustersOf: map[types.UID][]string{}}
}

// Handler keeps the index in step with an informer of Projects.
func (m *Members) Handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.set(obj) },
		UpdateFunc: func(_, obj any) { m.set(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*v1alpha1.Project); ok {
				m.mu.Lock()
				defer m.mu.Unlock()
				m.forget(p.UID)
			}
		},
	}
}

func (m *Members) set(obj any) {
	p, ok := obj.(*v1alpha1.Project)
	if !ok {
		return
	}
	users, groups := sets.New[string](), sets.New[string]()
	for _, member := range p.Spec.Members {
		switch member.Kind {
		case v1alpha1.SubjectKindUser:
			users.Insert(member.Name)
		case v1alpha1.SubjectKindGroup:
			groups.Insert(member.Name)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	previous := map[string]*placement{}
	for _, key := range m.clustersOf[p.UID] {
		previous[key] = m.byCluster[key][p.UID]
	}
	m.forget(p.UID)
	if p.DeletionTimestamp != nil {
		return // a project being deleted grants nothing
	}
	for _, cluster := range p.Spec.Clusters {
		key := p.Namespace + "/" + cluster
		pl := &placement{namespace: p.Spec.Namespace, users: users, groups: groups, readyUsers: sets.New[string](), readyGrps: sets.New[string]()}
		if old := previous[key]; old != nil {
			pl.readyUsers, pl.readyGrps = old.readyUsers, old.readyGrps
		}
		if converged(p, cluster) {
			pl.readyUsers, pl.readyGrps = users, groups
		}
		if m.byCluster[key] == nil {
			m.byCluster[key] = map[types.UID]*placement{}
		}
		m.byCluster[key][p.UID] = pl
		m.clustersOf[p.UID] = append(m.clustersOf[p.UID], key)
	}
}

// forget drops a project; the caller holds the lock.
func (m *Members) forget(uid types.UID) {
	for _, key := range m.clustersOf[uid] {
		delete(m.byCluster[key], uid)
		if len(m.byCluster[key]) == 0 {
			delete(m.byCluster, key)
		}
	}
	delete(m.clustersOf, uid)
}

// converged tells whether the project's bindings in the cluster reflect its current spec.
func converged(p *v1alpha1.Project, cluster string) bool {
	for _, c := range p.Status.Clusters {
		if c.Name == cluster {
			return c.Phase == v1alpha1.ProjectReady && c.ObservedGeneration >= p.Generation
		}
	}
	return false
}

// Membership is what the projects placed in a cluster say of one caller.
type Membership struct {
	// Member is true when some project makes the caller a member and its bindings for
	// the caller are in place.
	Member bool
	// Groups are the caller's groups that such projects name as members.
	Groups []string
	// Pending holds the namespaces of the projects that name the caller but whose
	// bindings for the caller are not in place yet.
	Pending []string
}

// Lookup returns what the projects placed in namespace/cluster say of a user.
func (m *Members) Lookup(namespace, cluster, name string, groups []string) Membership {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out Membership
	hits, pending := sets.New[string](), sets.New[string]()
	for _, pl := range m.byCluster[namespace+"/"+cluster] {
		if pl.users.Has(name) {
			if pl.readyUsers.Has(name) {
				out.Member = true
			} else {
				pending.Insert(pl.namespace)
			}
		}
		for _, g := range groups {
			if !pl.groups.Has(g) {
				continue
			}
			if pl.readyGrps.Has(g) {
				out.Member = true
				hits.Insert(g)
			} else {
				pending.Insert(pl.namespace)
			}
		}
	}
	out.Groups, out.Pending = sets.List(hits), sets.List(pending)
	return out
}
