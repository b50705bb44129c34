// Package app wires the containerservice aggregated API server: its options, storage,
// API group and post-start hooks.
package app

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	netutils "k8s.io/utils/net"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
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
}

// NewOptions returns the default options.
func NewOptions() *Options {
	o := &Options{
		Recommended: genericoptions.NewRecommendedOptions(etcdPathPrefix, Codecs.LegacyCodec(v1alpha1.SchemeGroupVersion)),
		DataDir:     "/var/lib/containerservice",
	}
	o.Recommended.Etcd.StorageConfig.EncodeVersioner = runtime.NewMultiGroupVersioner(
		v1alpha1.SchemeGroupVersion, schema.GroupKind{Group: v1alpha1.GroupName})
	return o
}

// NewCommand returns the server's command.
func NewCommand(ctx context.Context) *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "containerservice-apiserver",
		Short: "Serve the containerservice.ucloudstack.io API (Clusters, Nodes, Plugins, Projects)",
		Long: `containerservice-apiserver serves the containerservice.ucloudstack.io API behind a
Kubernetes aggregator. It stores objects in the etcd given by --etcd-servers, or in an
embedded etcd under --data-dir when none is given.`,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.Run(cmd.Context())
		},
	}
	cmd.SetContext(ctx)
	fs := cmd.Flags()
	o.Recommended.AddFlags(fs)
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "Directory of the embedded etcd, used when --etcd-servers is empty. Created with mode 0700.")
	fs.StringSliceVar(&o.AlternateDNS, "alternate-dns", o.AlternateDNS, "Extra DNS names for the self-signed serving certificate made when no --tls-cert-file is given.")
	return cmd
}

// Validate reports every invalid option.
func (o *Options) Validate() error {
	return utilerrors.NewAggregate(o.Recommended.Validate())
}

// Run starts the embedded etcd when needed, then serves until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	if len(o.Recommended.Etcd.StorageConfig.Transport.ServerList) == 0 {
		etcd, err := startEmbeddedEtcd(o.DataDir)
		if err != nil {
			return err
		}
		defer etcd.Close()
		o.Recommended.Etcd.StorageConfig.Transport.ServerList = []string{etcd.clientURL}
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if err := o.Recommended.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", o.AlternateDNS, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return fmt.Errorf("create self-signed serving certificate: %w", err)
	}
	server, err := o.newServer()
	if err != nil {
		return err
	}
	return server.PrepareRun().RunWithContext(ctx)
}
