// Package fuzzer fills containerservice objects with random values that survive a
// round trip through every served version.
package fuzzer

import (
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeserializer "k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/randfill"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

// Funcs returns the fuzz functions of the group. Fields that v1alpha1 defaults are never
// left empty, since decoding would fill them and the round trip would differ.
var Funcs = func(runtimeserializer.CodecFactory) []any {
	return []any{
		func(q *resource.Quantity, c randfill.Continue) {
			*q = *resource.NewQuantity(c.Int63n(1<<40)+1, resource.BinarySI)
		},
		func(s *cs.ClusterSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Version = nonEmpty(s.Version)
			if s.ControlPlane.Replicas == 0 {
				s.ControlPlane.Replicas = 1
			}
			if len(s.Network.IPFamilies) == 0 {
				s.Network.IPFamilies = []cs.IPFamily{cs.IPv4}
			}
			if len(s.Network.PodCIDRs) == 0 {
				s.Network.PodCIDRs = []string{"10.244.0.0/16"}
			}
			if len(s.Network.ServiceCIDRs) == 0 {
				s.Network.ServiceCIDRs = []string{"10.96.0.0/12"}
			}
		},
		func(s *cs.AdminKubeconfigRequestSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			if s.ExpirationSeconds == nil {
				seconds := c.Int63n(86400) + 1
				s.ExpirationSeconds = &seconds
			}
			if s.Endpoint == "" {
				s.Endpoint = cs.EndpointInternal
			}
		},
		func(s *cs.PluginSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			if s.Enabled == nil {
				enabled := c.Bool()
				s.Enabled = &enabled
			}
		},
		func(s *cs.ProjectSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			if s.NamespacePolicy == "" {
				s.NamespacePolicy = cs.ProjectNamespaceRetain
			}
		},
	}
}

func nonEmpty(s string) string {
	if s == "" {
		return "v1.37.1"
	}
	return s
}
