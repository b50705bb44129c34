package apiserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	unionauth "k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/util/compatibility"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	componentbaseconfig "k8s.io/component-base/config"
	componentbaseoptions "k8s.io/component-base/config/options"
	netutils "k8s.io/utils/net"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	generatedopenapi "github.com/ucloudstack/containerservice/pkg/generated/openapi"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/driver/local"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn"
	clusterstorage "github.com/ucloudstack/containerservice/pkg/registry/containerservice/cluster/storage"
)

// etcdPathPrefix keeps our objects apart from a host kube-apiserver's when both share an etcd.
const etcdPathPrefix = "/registry/" + v1alpha1.GroupName

// Options are the server's command-line options.
type Options struct {
	// Recommended are the generic API server options: secure serving, delegated
	// authentication and authorization, audit, admission, etcd, features.
	Recommended *genericoptions.RecommendedOptions
	// DataDir holds the embedded etcd's data when no --etcd-servers are given.
	DataDir string
	// AlternateDNS are extra names for the self-signed serving certificate.
	AlternateDNS []string
	// Provisioner names the driver that makes Clusters real: local, or none to serve the
	// API alone.
	Provisioner string
	// KubeBinDir holds the binaries the local driver runs control planes with.
	KubeBinDir string
	// FrontBinary is containerservice-front, which the local driver runs as each
	// cluster's front.
	FrontBinary string
	// ExternalHost is the address users reach user clusters at.
	ExternalHost string
	// Workers is the number of clusters reconciled at once.
	Workers int
	// MaxConcurrentStarts bounds how many control planes start at once.
	MaxConcurrentStarts int
	// AdminKubeconfigMaxTTL caps the lifetime of break-glass credentials.
	AdminKubeconfigMaxTTL time.Duration
	// LeaderElection makes sure one server at a time runs the controllers.
	LeaderElection componentbaseconfig.LeaderElectionConfiguration
	// AuthenticationConfig is an AuthenticationConfiguration file whose JWT issuers this
	// server trusts for bearer tokens sent straight to it.
	AuthenticationConfig string
	// Kubeconfig configures the user kubeconfigs of clusters/kubeconfig.
	Kubeconfig clusterstorage.KubeconfigConfig
	// PublicCAFile holds the CA bundle of Kubeconfig.PublicURL.
	PublicCAFile string
	// OIDCCAFile holds the CA bundle of Kubeconfig.OIDCIssuerURL.
	OIDCCAFile string
}

// NewOptions returns the default options.
func NewOptions() *Options {
	o := &Options{
		Recommended:           genericoptions.NewRecommendedOptions(etcdPathPrefix, Codecs.LegacyCodec(v1alpha1.SchemeGroupVersion)),
		DataDir:               "/var/lib/containerservice",
		Provisioner:           "local",
		KubeBinDir:            defaultKubeBinDir(),
		FrontBinary:           defaultFrontBinary(),
		Workers:               5,
		MaxConcurrentStarts:   4,
		AdminKubeconfigMaxTTL: 24 * time.Hour,
		LeaderElection: componentbaseconfig.LeaderElectionConfiguration{
			LeaderElect:       true,
			LeaseDuration:     metav1.Duration{Duration: 15 * time.Second},
			RenewDeadline:     metav1.Duration{Duration: 10 * time.Second},
			RetryPeriod:       metav1.Duration{Duration: 2 * time.Second},
			ResourceLock:      resourcelock.LeasesResourceLock,
			ResourceName:      "containerservice-controllers",
			ResourceNamespace: "containerservice-system",
		},
	}
	o.Recommended.Etcd.StorageConfig.EncodeVersioner = runtime.NewMultiGroupVersioner(
		v1alpha1.SchemeGroupVersion, schema.GroupKind{Group: v1alpha1.GroupName})
	enableResourceQuota(o.Recommended)
	// As kube-apiserver: one HTTP/2 connection carries up to 1000 concurrent streams (the
	// library's default is 100), so that a console or controller watching through the
	// proxy many clusters' objects at once is not held up by its own connection.
	o.Recommended.SecureServing.HTTP2MaxStreamsPerConnection = 1000
	// Someone just added to a project is let in within the second: a denial of the host's
	// SubjectAccessReview is remembered 1 s, not the library's 10 s (still enough to keep a
	// flood of refused requests from becoming a flood of reviews).
	o.Recommended.Authorization.DenyCacheTTL = time.Second
	return o
}

// AddFlags binds every option to a flag of fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.Recommended.AddFlags(fs)
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "Directory of the embedded etcd, used when --etcd-servers is empty. Created with mode 0700.")
	fs.StringSliceVar(&o.AlternateDNS, "alternate-dns", o.AlternateDNS, "Extra DNS names for the self-signed serving certificate made when no --tls-cert-file is given.")
	fs.StringVar(&o.Provisioner, "provisioner", o.Provisioner, "Driver that runs user clusters: local (control planes as processes on this machine, data under --data-dir/clusters) or none (serve the API only).")
	fs.StringVar(&o.KubeBinDir, "kube-bin-dir", o.KubeBinDir, "Directory of etcd, kube-apiserver, kube-controller-manager and kube-scheduler "+containerservice.DefaultKubernetesVersion+" for the local driver (hack/kube-binaries.sh prints it).")
	fs.StringVar(&o.FrontBinary, "front-binary", o.FrontBinary, "containerservice-front, which the local driver runs as each cluster's front on its published port (default: next to this binary).")
	fs.StringVar(&o.ExternalHost, "external-host", "127.0.0.1", "Host name or address users reach user clusters' kube-apiservers at.")
	fs.IntVar(&o.Workers, "cluster-workers", o.Workers, "Clusters reconciled at once.")
	fs.IntVar(&o.MaxConcurrentStarts, "max-concurrent-starts", o.MaxConcurrentStarts, "Control planes the local driver starts at once (after a reboot every cluster needs starting), and kube-apiservers it replaces at once behind their fronts (clusters made together renew together); the others wait their turn. Adopting a control plane that still runs needs no start.")
	fs.DurationVar(&o.AdminKubeconfigMaxTTL, "admin-kubeconfig-max-expiration", o.AdminKubeconfigMaxTTL, "Longest lifetime of a break-glass credential from clusters/adminkubeconfig (10m to 24h); longer requests get this.")
	componentbaseoptions.BindLeaderElectionFlags(&o.LeaderElection, fs)
	fs.StringVar(&o.AuthenticationConfig, "authentication-config", "", "An apiserver.config.k8s.io AuthenticationConfiguration file (the one the host kube-apiserver may use): its JWT issuers' ID tokens authenticate callers that reach this server directly. The host's own tokens still go through delegated TokenReview, and the aggregator's requests through its front-proxy certificate.")
	fs.StringVar(&o.Kubeconfig.PublicURL, "public-url", "", "URL of the host kube-apiserver as users reach it; user kubeconfigs point at each cluster's proxy path below it.")
	fs.StringVar(&o.PublicCAFile, "public-ca-file", "", "PEM bundle that verifies --public-url, put into user kubeconfigs.")
	fs.StringVar(&o.Kubeconfig.OIDCIssuerURL, "oidc-issuer-url", "", "Issuer of the platform's OIDC provider, for user kubeconfigs.")
	fs.StringVar(&o.Kubeconfig.OIDCClientID, "oidc-client-id", "", "OIDC client ID user kubeconfigs log in with.")
	fs.StringVar(&o.OIDCCAFile, "oidc-ca-file", "", "PEM bundle that verifies --oidc-issuer-url, put into user kubeconfigs (when the system roots do not).")
}

// Validate reports every invalid option.
func (o *Options) Validate() error {
	errs := o.Recommended.Validate()
	if o.Provisioner != "local" && o.Provisioner != "none" {
		errs = append(errs, fmt.Errorf("--provisioner must be local or none, not %q", o.Provisioner))
	}
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("--cluster-workers must be at least 1"))
	}
	if o.MaxConcurrentStarts < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-starts must be at least 1"))
	}
	if le := o.LeaderElection; le.LeaderElect {
		switch {
		case le.ResourceLock != resourcelock.LeasesResourceLock:
			errs = append(errs, fmt.Errorf("--leader-elect-resource-lock must be %s", resourcelock.LeasesResourceLock))
		case le.ResourceName == "" || le.ResourceNamespace == "":
			errs = append(errs, fmt.Errorf("--leader-elect-resource-name and --leader-elect-resource-namespace must be set"))
		case le.RetryPeriod.Duration <= 0 || float64(le.RenewDeadline.Duration) <= leaderelection.JitterFactor*float64(le.RetryPeriod.Duration) ||
			le.LeaseDuration.Duration <= le.RenewDeadline.Duration:
			errs = append(errs, fmt.Errorf("leader election needs --leader-elect-lease-duration > --leader-elect-renew-deadline > %.1f × --leader-elect-retry-period > 0", leaderelection.JitterFactor))
		}
	}
	if o.AdminKubeconfigMaxTTL < 10*time.Minute || o.AdminKubeconfigMaxTTL > 24*time.Hour {
		errs = append(errs, fmt.Errorf("--admin-kubeconfig-max-expiration must be between 10m and 24h, not %s", o.AdminKubeconfigMaxTTL))
	}
	return utilerrors.NewAggregate(errs)
}

// defaultKubeBinDir is where hack/kube-binaries.sh puts the binaries for the current user.
func defaultKubeBinDir() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(cache, "containerservice", "kube-v1.37.1_etcd-v3.7.0_kwok-v0.8.0", "bin")
}

// defaultFrontBinary is containerservice-front next to this binary, where `make build`
// puts it.
func defaultFrontBinary() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	return filepath.Join(filepath.Dir(self), "containerservice-front")
}

// Run builds the server from the options and serves until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	config, cleanup, err := o.Config(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	server, err := config.Complete().New()
	if err != nil {
		return err
	}
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

// Config starts what the server stands on (the embedded etcd when no --etcd-servers are
// given, the driver) and returns the server's configuration. cleanup stops them again,
// the driver first: user control planes keep running when the server stops, for whatever
// reason, and the next start adopts them.
func (o *Options) Config(ctx context.Context) (config *Config, cleanup func(), err error) {
	var stops []func()
	cleanup = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	if len(o.Recommended.Etcd.StorageConfig.Transport.ServerList) == 0 {
		etcd, err := startEmbeddedEtcd(o.DataDir)
		if err != nil {
			return nil, nil, err
		}
		stops = append(stops, etcd.Close)
		o.Recommended.Etcd.StorageConfig.Transport.ServerList = []string{etcd.clientURL}
	}
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	if err := o.Recommended.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", o.AlternateDNS, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return nil, nil, fmt.Errorf("create self-signed serving certificate: %w", err)
	}
	if o.PublicCAFile != "" {
		ca, err := os.ReadFile(o.PublicCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("read --public-ca-file: %w", err)
		}
		o.Kubeconfig.PublicCA = ca
	}
	if o.OIDCCAFile != "" {
		ca, err := os.ReadFile(o.OIDCCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("read --oidc-ca-file: %w", err)
		}
		o.Kubeconfig.OIDCCA = ca
	}
	// The driver before the generic configuration, which binds the port: the driver takes
	// the data directory's lock, so a second server on the same directory is told so.
	var driver provisioner.Driver
	if o.Provisioner == "local" {
		d, err := local.New(local.Config{
			DataDir:             o.DataDir,
			BinDirs:             map[string]string{containerservice.DefaultKubernetesVersion: o.KubeBinDir},
			ExternalHost:        o.ExternalHost,
			MaxConcurrentStarts: o.MaxConcurrentStarts,
			FrontBinary:         o.FrontBinary,
		})
		if err != nil {
			return nil, nil, err
		}
		stops = append(stops, d.Shutdown)
		driver = d
	}
	generic, err := o.genericConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	return &Config{Generic: generic, Extra: ExtraConfig{
		Driver:                driver,
		Kubeconfig:            o.Kubeconfig,
		AdminKubeconfigMaxTTL: o.AdminKubeconfigMaxTTL,
		Workers:               o.Workers,
		LeaderElection:        o.LeaderElection,
		DataDir:               o.DataDir,
	}}, cleanup, nil
}

// genericConfig is the generic server's configuration: the recommended options applied,
// OpenAPI from our generated definitions, the proxy's long-running check, and OIDC
// bearer tokens ahead of the delegated authenticators when --authentication-config is set.
func (o *Options) genericConfig(ctx context.Context) (*genericapiserver.RecommendedConfig, error) {
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
	return config, nil
}
