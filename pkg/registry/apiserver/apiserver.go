package apiserver

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	unionauth "k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/compatibility"
	"k8s.io/client-go/tools/cache"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned"
	csinformers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions"
	generatedopenapi "github.com/ucloudstack/containerservice/pkg/generated/openapi"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/proxy"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn"
	clusterstorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/cluster/storage"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/clusterref"
	nodestorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/node/storage"
	pluginstorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/plugin/storage"
	"github.com/ucloudstack/containerservice/pkg/registry/containerservice/project"
	projectstorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/project/storage"
	"github.com/ucloudstack/containerservice/pkg/registry/specstatus"
)

// newServer builds the generic server from the options and installs the API group.
func (o *Options) newServer(ctx context.Context, driver provisioner.Driver) (*genericapiserver.GenericAPIServer, error) {
	config := genericapiserver.NewRecommendedConfig(Codecs)
	namer := openapi.NewDefinitionNamer(Scheme)
	config.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, namer)
	config.OpenAPIConfig.Info.Title = "containerservice"
	config.OpenAPIConfig.Info.Version = v1alpha1.SchemeGroupVersion.Version
	config.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, namer)
	config.OpenAPIV3Config.Info.Title = "containerservice"
	config.OpenAPIV3Config.Info.Version = v1alpha1.SchemeGroupVersion.Version
	config.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	if err := o.Recommended.ApplyTo(config); err != nil {
		return nil, fmt.Errorf("apply options: %w", err)
	}
	config.LongRunningFunc = longRunning()
	if o.AuthenticationConfig != "" {
		issuers, err := authn.LoadConfig(o.AuthenticationConfig)
		if err != nil {
			return nil, err
		}
		tokens, err := authn.New(ctx, issuers)
		if err != nil {
			return nil, err
		}
		// OIDC first: a token of a trusted issuer is judged there; anything else goes on
		// to the front-proxy certificate, client certificates and TokenReview.
		config.Authentication.Authenticator = unionauth.NewFailOnError(tokens, config.Authentication.Authenticator)
	}

	server, err := config.Complete().New("containerservice-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("create server: %w", err)
	}
	var members *proxy.Members
	if driver != nil {
		if members, err = addMembersIndex(server, config); err != nil {
			return nil, err
		}
	}
	storage, err := newStorage(Scheme, config.RESTOptionsGetter, driver, members, o.Kubeconfig, o.AdminKubeconfigMaxTTL)
	if err != nil {
		return nil, err
	}
	group := genericapiserver.NewDefaultAPIGroupInfo(v1alpha1.GroupName, Scheme, runtime.NewParameterCodec(Scheme), Codecs)
	group.NegotiatedSerializer = groupCodecs
	group.VersionedResourcesStorageMap[v1alpha1.SchemeGroupVersion.Version] = storage
	if err := server.InstallAPIGroup(&group); err != nil {
		return nil, fmt.Errorf("install API group %s: %w", v1alpha1.GroupName, err)
	}

	if driver != nil {
		if err := o.addProvisioner(server, config, driver); err != nil {
			return nil, err
		}
	}
	return server, nil
}

// newStorage returns the storage of every resource and subresource of the group.
func newStorage(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter, driver provisioner.Driver, members *proxy.Members, kubeconfig clusterstorage.KubeconfigConfig, adminMaxTTL time.Duration) (map[string]rest.Storage, error) {
	projectRefs, clusterRefs := &project.References{}, &clusterref.Checker{}
	kinds := []struct {
		plural string
		build  func(runtime.ObjectTyper, generic.RESTOptionsGetter) (*specstatus.REST, *specstatus.StatusREST, error)
	}{
		{"clusters", clusterstorage.NewREST},
		{"nodes", func(t runtime.ObjectTyper, o generic.RESTOptionsGetter) (*specstatus.REST, *specstatus.StatusREST, error) {
			return nodestorage.NewREST(t, o, clusterRefs)
		}},
		{"plugins", func(t runtime.ObjectTyper, o generic.RESTOptionsGetter) (*specstatus.REST, *specstatus.StatusREST, error) {
			return pluginstorage.NewREST(t, o, clusterRefs)
		}},
		{"projects", func(t runtime.ObjectTyper, o generic.RESTOptionsGetter) (*specstatus.REST, *specstatus.StatusREST, error) {
			return projectstorage.NewREST(t, o, projectRefs)
		}},
	}
	storage := map[string]rest.Storage{}
	for _, k := range kinds {
		main, status, err := k.build(scheme, optsGetter)
		if err != nil {
			return nil, fmt.Errorf("create storage for %s: %w", k.plural, err)
		}
		storage[k.plural] = main
		storage[k.plural+"/status"] = status
	}
	clusters := storage["clusters"].(rest.Getter)
	projectRefs.Clusters, projectRefs.Projects = clusters, storage["projects"].(rest.Lister)
	clusterRefs.Clusters = clusters
	storage["clusters/adminkubeconfig"] = clusterstorage.NewAdminKubeconfigREST(clusters, driver, scheme, adminMaxTTL)
	storage["clusters/kubeconfig"] = clusterstorage.NewKubeconfigREST(clusters, kubeconfig)
	var tenantProxy *proxy.Proxy
	if driver != nil {
		tenantProxy = proxy.New(driver)
	}
	storage["clusters/proxy"] = clusterstorage.NewProxyREST(clusters, scheme, tenantProxy, members)
	return storage, nil
}

// addMembersIndex keeps the tenant proxy's index of project members, fed by an informer of
// Projects over the loopback client on every replica (the proxy serves whether or not
// this server leads the controllers). Until the informer has synced, the index is empty
// and project members are refused; the server is not ready before then.
func addMembersIndex(server *genericapiserver.GenericAPIServer, config *genericapiserver.RecommendedConfig) (*proxy.Members, error) {
	client, err := versioned.NewForConfig(config.LoopbackClientConfig)
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
