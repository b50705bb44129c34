// Package apiserver assembles the containerservice aggregated API server, as
// k8s.io/sample-apiserver does: Options (flags) → Config → Complete → New. It builds the
// API group's storage map in one place from each kind's storage aggregate, and adds the
// post-start hooks that run the proxy's members index and the provisioner's controllers.
// cmd/containerservice-apiserver only parses flags and calls it; tests start the server
// in-process through it.
package apiserver

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	componentbaseconfig "k8s.io/component-base/config"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	csinformers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/proxy"
	clusterstorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/cluster/storage"
	nodestorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/node/storage"
	pluginstorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/plugin/storage"
	projectstorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/project/storage"
)

// Config is everything the server is built from.
type Config struct {
	// Generic is the generic API server's configuration (serving, authentication,
	// authorization, admission, storage, OpenAPI).
	Generic *genericapiserver.RecommendedConfig
	// Extra is what our API group and controllers add.
	Extra ExtraConfig
}

// ExtraConfig is the configuration of our API group and controllers.
type ExtraConfig struct {
	// Driver makes Clusters real; nil serves the API alone (no controllers, no proxy).
	Driver provisioner.Driver
	// Kubeconfig configures the user kubeconfigs of clusters/kubeconfig.
	Kubeconfig clusterstorage.KubeconfigConfig
	// AdminKubeconfigMaxTTL caps the lifetime of break-glass credentials.
	AdminKubeconfigMaxTTL time.Duration
	// Workers is the number of objects of each kind reconciled at once.
	Workers int
	// LeaderElection makes sure one server at a time runs the controllers.
	LeaderElection componentbaseconfig.LeaderElectionConfiguration
	// DataDir keeps this server's leader-election identity across restarts.
	DataDir string
}

type completedConfig struct {
	generic genericapiserver.CompletedConfig
	// client reaches the host kube-apiserver (Events, leases, the members' host RBAC);
	// nil when the server runs without one.
	client *restclient.Config
	extra  *ExtraConfig
}

// CompletedConfig is a Config with its defaults filled in, ready for New.
type CompletedConfig struct {
	*completedConfig
}

// Complete fills in what the generic configuration derives from the rest.
func (c *Config) Complete() CompletedConfig {
	return CompletedConfig{&completedConfig{generic: c.Generic.Complete(), client: c.Generic.ClientConfig, extra: &c.Extra}}
}

// Server is the containerservice aggregated API server.
type Server struct {
	GenericAPIServer *genericapiserver.GenericAPIServer
}

// New builds the server: the generic server, our API group, and with a driver the
// members index and the provisioner's controllers as post-start hooks.
func (c CompletedConfig) New() (*Server, error) {
	server, err := c.generic.New("containerservice-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("create server: %w", err)
	}
	var members *proxy.Members
	if c.extra.Driver != nil {
		if members, err = addMembersIndex(server, c.generic.LoopbackClientConfig); err != nil {
			return nil, err
		}
	}
	storage, err := newStorage(c.generic.RESTOptionsGetter, clusterstorage.Config{
		Scheme:                Scheme,
		Driver:                c.extra.Driver,
		Members:               members,
		Kubeconfig:            c.extra.Kubeconfig,
		AdminKubeconfigMaxTTL: c.extra.AdminKubeconfigMaxTTL,
	})
	if err != nil {
		return nil, err
	}
	group := genericapiserver.NewDefaultAPIGroupInfo(v1alpha1.GroupName, Scheme, runtime.NewParameterCodec(Scheme), Codecs)
	group.NegotiatedSerializer = groupCodecs
	group.VersionedResourcesStorageMap[v1alpha1.SchemeGroupVersion.Version] = storage
	if err := server.InstallAPIGroup(&group); err != nil {
		return nil, fmt.Errorf("install API group %s: %w", v1alpha1.GroupName, err)
	}
	if c.extra.Driver != nil {
		if err := c.addControllers(server); err != nil {
			return nil, err
		}
	}
	return &Server{GenericAPIServer: server}, nil
}

// newStorage is the API group's storage map: every resource and subresource of every
// kind, from each kind's storage aggregate. Nodes, Plugins and Projects look their
// clusters up in the clusters store.
func newStorage(optsGetter generic.RESTOptionsGetter, cfg clusterstorage.Config) (map[string]rest.Storage, error) {
	clusters, err := clusterstorage.NewStorage(optsGetter, cfg)
	if err != nil {
		return nil, fmt.Errorf("create storage for clusters: %w", err)
	}
	nodes, err := nodestorage.NewStorage(cfg.Scheme, optsGetter, clusters.Main)
	if err != nil {
		return nil, fmt.Errorf("create storage for nodes: %w", err)
	}
	plugins, err := pluginstorage.NewStorage(cfg.Scheme, optsGetter, clusters.Main)
	if err != nil {
		return nil, fmt.Errorf("create storage for plugins: %w", err)
	}
	projects, err := projectstorage.NewStorage(cfg.Scheme, optsGetter, clusters.Main)
	if err != nil {
		return nil, fmt.Errorf("create storage for projects: %w", err)
	}
	return map[string]rest.Storage{
		"clusters":                 clusters.Main,
		"clusters/status":          clusters.Status,
		"clusters/kubeconfig":      clusters.Kubeconfig,
		"clusters/adminkubeconfig": clusters.AdminKubeconfig,
		"clusters/proxy":           clusters.Proxy,
		"nodes":                    nodes.Main,
		"nodes/status":             nodes.Status,
		"plugins":                  plugins.Main,
		"plugins/status":           plugins.Status,
		"projects":                 projects.Main,
		"projects/status":          projects.Status,
	}, nil
}

// addMembersIndex keeps the tenant proxy's index of project members, fed by an informer of
// Projects over the loopback client on every replica (the proxy serves whether or not
// this server leads the controllers). Until the informer has synced, the index is empty
// and project members are refused; the server is not ready before then.
func addMembersIndex(server *genericapiserver.GenericAPIServer, loopback *restclient.Config) (*proxy.Members, error) {
	client, err := versioned.NewForConfig(loopback)
	if err != nil {
		return nil, fmt.Errorf("members index client: %w", err)
	}
	members := proxy.NewMembers()
	informers := csinformers.NewSharedInformerFactory(client, 0)
	projects := informers.Containerservice().V1alpha1().Projects().Informer()
	if _, err := projects.AddEventHandler(members.Handler()); err != nil {
		return nil, err
	}
	server.AddPostStartHookOrDie("start-containerservice-members-index", func(hook genericapiserver.PostStartHookContext) error {
		informers.Start(hook.Done())
		if !cache.WaitForCacheSync(hook.Done(), projects.HasSynced) {
			return fmt.Errorf("the projects informer did not sync")
		}
		return nil
	})
	return members, nil
}
