package apiserver

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/initializer"
	"k8s.io/apiserver/pkg/admission/plugin/resourcequota"
	quota "k8s.io/apiserver/pkg/quota/v1"
	"k8s.io/apiserver/pkg/quota/v1/generic"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
)

// enableResourceQuota turns on k8s.io/apiserver's ResourceQuota admission plugin, so that
// standard ResourceQuota objects in a tenant namespace of the host
// (count/clusters.containerservice.ucloudstack.io, count/nodes..., …) bound what the tenant
// creates here. The plugin counts a create against the quota's status.used and writes the
// new usage back; the host's kube-controller-manager recomputes usage (and so frees a slot
// after a delete) from its own watch of our resources.
func enableResourceQuota(o *genericoptions.RecommendedOptions) {
	resourcequota.Register(o.Admission.Plugins)
	o.Admission.RecommendedPluginOrder = append(o.Admission.RecommendedPluginOrder, resourcequota.PluginName)
	previous := o.ExtraAdmissionInitializers
	o.ExtraAdmissionInitializers = func(c *genericapiserver.RecommendedConfig) ([]admission.PluginInitializer, error) {
		inits, err := previous(c)
		if err != nil {
			return nil, err
		}
		// No evaluators of our own: for a resource it has none for, the plugin uses the
		// generic object-count evaluator, which is all count/<resource>.<group> needs.
		return append(inits, quotaInitializer{generic.NewConfiguration(nil, map[schema.GroupResource]struct{}{})}), nil
	}
}

// quotaInitializer hands the quota configuration to the plugin, as kube-apiserver's own
// admission initializer does.
type quotaInitializer struct{ config quota.Configuration }

func (i quotaInitializer) Initialize(p admission.Interface) {
	if wants, ok := p.(initializer.WantsQuotaConfiguration); ok {
		wants.SetQuotaConfiguration(i.config)
	}
}
