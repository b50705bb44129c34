package validation

import (
	"time"

	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

// wantErrors asserts that errs holds exactly one error per expected "type field" pair,
// e.g. "FieldValueInvalid spec.network.podCIDRs[0]".
func wantErrors(t *testing.T, errs field.ErrorList, want ...string) {
	t.Helper()
	got := map[string]bool{}
	for _, e := range errs {
		got[string(e.Type)+" "+e.Field] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing error %q; got %v", w, errs)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d: %v", len(errs), len(want), errs)
	}
}

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "acme", ResourceVersion: "1"}
}

func validCluster() *cs.Cluster {
	return &cs.Cluster{
		ObjectMeta: meta("prod"),
		Spec: cs.ClusterSpec{
			Version:      cs.DefaultKubernetesVersion,
			ControlPlane: cs.ControlPlaneSpec{Replicas: 1},
			Network: cs.ClusterNetwork{
				IPFamilies:   []cs.IPFamily{cs.IPv4},
				PodCIDRs:     []string{"10.244.0.0/16"},
				ServiceCIDRs: []string{"10.96.0.0/12"},
			},
			Administrators: []cs.Subject{{Kind: cs.SubjectKindUser, Name: "alice@example.com"}},
		},
	}
}

const (
	required     = "FieldValueRequired "
	invalid      = "FieldValueInvalid "
	forbidden    = "FieldValueForbidden "
	unsupported  = "FieldValueNotSupported "
	duplicate    = "FieldValueDuplicate "
	tooMany      = "FieldValueTooMany "
	tooLong      = "FieldValueTooLong "
	networkField = "spec.network"
)

func TestValidateCluster(t *testing.T) {
	dual := func(c *cs.Cluster) {
		c.Spec.Network = cs.ClusterNetwork{
			IPFamilies:   []cs.IPFamily{cs.IPv4, cs.IPv6},
			PodCIDRs:     []string{"10.244.0.0/16", "fd00:10:244::/56"},
			ServiceCIDRs: []string{"10.96.0.0/12", "fd00:10:96::/108"},
		}
	}
	tests := map[string]struct {
		mutate func(*cs.Cluster)
		want   []string
	}{
		"valid IPv4":             {func(*cs.Cluster) {}, nil},
		"negative drain timeout": {func(c *cs.Cluster) { c.Spec.NodeDrainTimeout = &metav1.Duration{Duration: -time.Second} }, []string{invalid + "spec.nodeDrainTimeout"}},
		"valid dual-stack":       {dual, nil},
		"valid IPv6 only": {func(c *cs.Cluster) {
			c.Spec.Network = cs.ClusterNetwork{IPFamilies: []cs.IPFamily{cs.IPv6}, PodCIDRs: []string{"fd00:10:244::/56"}, ServiceCIDRs: []string{"fd00:10:96::/108"}}
		}, nil},
		"HA control plane not yet":  {func(c *cs.Cluster) { c.Spec.ControlPlane.Replicas = 3 }, []string{invalid + "spec.controlPlane.replicas"}},
		"name not a DNS label":      {func(c *cs.Cluster) { c.Name = "Prod_1" }, []string{invalid + "metadata.name"}},
		"name too long for a label": {func(c *cs.Cluster) { c.Name = strings.Repeat("a", 64) }, []string{invalid + "metadata.name"}},
		"missing version":           {func(c *cs.Cluster) { c.Spec.Version = "" }, []string{required + "spec.version"}},
		"unsupported version":       {func(c *cs.Cluster) { c.Spec.Version = "v1.20.0" }, []string{unsupported + "spec.version"}},
		"two control planes":        {func(c *cs.Cluster) { c.Spec.ControlPlane.Replicas = 2 }, []string{invalid + "spec.controlPlane.replicas"}},
		"no families":               {func(c *cs.Cluster) { c.Spec.Network.IPFamilies = nil }, []string{required + "spec.network.ipFamilies"}},
		"three families": {func(c *cs.Cluster) {
			c.Spec.Network.IPFamilies = []cs.IPFamily{cs.IPv4, cs.IPv6, cs.IPv4}
		}, []string{tooMany + "spec.network.ipFamilies"}},
		"unknown family": {func(c *cs.Cluster) { c.Spec.Network.IPFamilies = []cs.IPFamily{"IPv5"} }, []string{unsupported + "spec.network.ipFamilies[0]"}},
		"same family twice": {func(c *cs.Cluster) {
			c.Spec.Network.IPFamilies = []cs.IPFamily{cs.IPv4, cs.IPv4}
		}, []string{duplicate + "spec.network.ipFamilies[1]"}},
		"pod CIDR unparsable":  {func(c *cs.Cluster) { c.Spec.Network.PodCIDRs = []string{"10.244.0.0"} }, []string{invalid + "spec.network.podCIDRs[0]"}},
		"pod CIDR host bits":   {func(c *cs.Cluster) { c.Spec.Network.PodCIDRs = []string{"10.244.0.1/16"} }, []string{invalid + "spec.network.podCIDRs[0]"}},
		"pod CIDR too small":   {func(c *cs.Cluster) { c.Spec.Network.PodCIDRs = []string{"10.244.0.0/25"} }, []string{invalid + "spec.network.podCIDRs[0]"}},
		"service CIDR too big": {func(c *cs.Cluster) { c.Spec.Network.ServiceCIDRs = []string{"10.0.0.0/8"} }, []string{invalid + "spec.network.serviceCIDRs[0]"}},
		"IPv6 service CIDR too big": {func(c *cs.Cluster) {
			dual(c)
			c.Spec.Network.ServiceCIDRs[1] = "fd00:10:96::/64"
		}, []string{invalid + "spec.network.serviceCIDRs[1]"}},
		"CIDR of the wrong family": {func(c *cs.Cluster) { c.Spec.Network.PodCIDRs = []string{"fd00:10:244::/56"} }, []string{invalid + "spec.network.podCIDRs[0]"}},
		"dual-stack with one pod range": {func(c *cs.Cluster) {
			dual(c)
			c.Spec.Network.PodCIDRs = c.Spec.Network.PodCIDRs[:1]
		}, []string{invalid + "spec.network.podCIDRs"}},
		"dual-stack ranges in the wrong order": {func(c *cs.Cluster) {
			dual(c)
			c.Spec.Network.ServiceCIDRs = []string{"fd00:10:96::/108", "10.96.0.0/12"}
		}, []string{invalid + "spec.network.serviceCIDRs[0]", invalid + "spec.network.serviceCIDRs[1]"}},
		"service range inside pod range": {func(c *cs.Cluster) {
			c.Spec.Network.PodCIDRs = []string{"10.0.0.0/8"}
		}, []string{invalid + "spec.network.serviceCIDRs[0]"}},
		"pod range inside service range": {func(c *cs.Cluster) {
			c.Spec.Network.PodCIDRs = []string{"10.96.0.0/16"}
		}, []string{invalid + "spec.network.serviceCIDRs[0]"}},
		"IPv6 ranges overlap": {func(c *cs.Cluster) {
			dual(c)
			c.Spec.Network.PodCIDRs[1] = "fd00:10:96::/56"
		}, []string{invalid + "spec.network.serviceCIDRs[1]"}},
		"administrator with a system: name": {func(c *cs.Cluster) {
			c.Spec.Administrators = []cs.Subject{{Kind: cs.SubjectKindGroup, Name: "system:masters"}}
		}, []string{forbidden + "spec.administrators[0].name"}},
		"administrator without a name": {func(c *cs.Cluster) {
			c.Spec.Administrators = []cs.Subject{{Kind: cs.SubjectKindUser, Name: " "}}
		}, []string{required + "spec.administrators[0].name"}},
		"administrator of an unknown kind": {func(c *cs.Cluster) {
			c.Spec.Administrators = []cs.Subject{{Kind: "ServiceAccount", Name: "bot"}}
		}, []string{unsupported + "spec.administrators[0].kind"}},
		"administrator twice": {func(c *cs.Cluster) {
			c.Spec.Administrators = append(c.Spec.Administrators, c.Spec.Administrators[0])
		}, []string{duplicate + "spec.administrators[1]"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := validCluster()
			tc.mutate(c)
			wantErrors(t, ValidateCluster(c), tc.want...)
		})
	}
}

// TestRangeBoundaries holds each address range limit at its edge: the last value that
// kube-controller-manager and kube-apiserver accept, and the first they refuse.
func TestRangeBoundaries(t *testing.T) {
	v4 := func(pods, services string) cs.ClusterNetwork {
		return cs.ClusterNetwork{IPFamilies: []cs.IPFamily{cs.IPv4}, PodCIDRs: []string{pods}, ServiceCIDRs: []string{services}}
	}
	v6 := func(pods, services string) cs.ClusterNetwork {
		return cs.ClusterNetwork{IPFamilies: []cs.IPFamily{cs.IPv6}, PodCIDRs: []string{pods}, ServiceCIDRs: []string{services}}
	}
	dual := func(pods6, services6 string) cs.ClusterNetwork {
		return cs.ClusterNetwork{IPFamilies: []cs.IPFamily{cs.IPv4, cs.IPv6},
			PodCIDRs: []string{"10.244.0.0/16", pods6}, ServiceCIDRs: []string{"10.96.0.0/12", services6}}
	}
	tests := []struct {
		name    string
		network cs.ClusterNetwork
		bad     string // the field refused, "" when valid
	}{
		{"IPv4 pods /24: one node range", v4("10.244.0.0/24", "10.96.0.0/12"), ""},
		{"IPv4 pods /25: no node range", v4("10.244.0.0/25", "10.96.0.0/12"), "spec.network.podCIDRs[0]"},
		{"IPv4 pods /8", v4("20.0.0.0/8", "10.96.0.0/12"), ""},
		{"IPv4 pods /4 (no upper bound for IPv4)", v4("64.0.0.0/4", "10.96.0.0/12"), ""},
		{"IPv6 pods /64: one node range", v6("fd00:10:244::/64", "fd00:10:96::/108"), ""},
		{"IPv6 pods /65: no node range", v6("fd00:10:244::/65", "fd00:10:96::/108"), "spec.network.podCIDRs[0]"},
		{"IPv6 pods /48: 2^16 node ranges", v6("fd00:10::/48", "fd00:10:96::/108"), ""},
		{"IPv6 pods /47: too many node ranges", v6("fd00:10::/47", "fd00:11:96::/108"), "spec.network.podCIDRs[0]"},
		{"IPv6 pods /32", v6("fd00::/32", "fd01:10:96::/108"), "spec.network.podCIDRs[0]"},
		{"dual-stack IPv6 pods /47", dual("fd00:10::/47", "fd00:11:96::/108"), "spec.network.podCIDRs[1]"},
		{"IPv4 services /12: 20 host bits", v4("10.244.0.0/16", "10.96.0.0/12"), ""},
		{"IPv4 services /11", v4("10.244.0.0/16", "10.64.0.0/11"), "spec.network.serviceCIDRs[0]"},
		{"IPv4 services /29: 8 addresses", v4("10.244.0.0/16", "10.96.0.0/29"), ""},
		{"IPv4 services /30: 4 addresses", v4("10.244.0.0/16", "10.96.0.0/30"), "spec.network.serviceCIDRs[0]"},
		{"IPv6 services /108", v6("fd00:10:244::/56", "fd00:10:96::/108"), ""},
		{"IPv6 services /107", v6("fd00:10:244::/56", "fd00:10:96::/107"), "spec.network.serviceCIDRs[0]"},
		{"IPv6 services /125: 8 addresses", v6("fd00:10:244::/56", "fd00:10:96::/125"), ""},
		{"IPv6 services /126: 4 addresses", v6("fd00:10:244::/56", "fd00:10:96::/126"), "spec.network.serviceCIDRs[0]"},
		{"a small secondary service range is fine", dual("fd00:10:244::/56", "fd00:10:96::/126"), ""},
		{"an IPv4-mapped IPv6 range is no IPv4 range", v4("10.244.0.0/16", "::ffff:10.96.0.0/108"), "spec.network.serviceCIDRs[0]"},
		{"a prefix with a leading zero", v4("10.244.0.0/016", "10.96.0.0/12"), "spec.network.podCIDRs[0]"},
		{"IPv6 not in canonical form", v6("fd00:0010:0244::/56", "fd00:10:96::/108"), "spec.network.podCIDRs[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validCluster()
			c.Spec.Network = tc.network
			errs := ValidateCluster(c)
			if tc.bad == "" {
				wantErrors(t, errs)
				return
			}
			wantErrors(t, errs, invalid+tc.bad)
		})
	}
}

// TestUpdatesRatchet: a Cluster stored before a rule was tightened (three replicas, a
// now-refused range) still takes updates that leave those fields alone, such as the
// removal of its finalizer, so it can always be deleted; changing them is checked.
func TestUpdatesRatchet(t *testing.T) {
	old := validCluster()
	old.Spec.ControlPlane.Replicas = 3
	old.Spec.Network = cs.ClusterNetwork{IPFamilies: []cs.IPFamily{cs.IPv6}, PodCIDRs: []string{"fd00::/40"}, ServiceCIDRs: []string{"fd01::/108"}}
	old.Finalizers = []string{"containerservice.ucloudstack.io/control-plane"}
	c := old.DeepCopy()
	c.Finalizers = nil
	wantErrors(t, ValidateClusterUpdate(c, old))
	c.Spec.ControlPlane.Replicas = 5
	wantErrors(t, ValidateClusterUpdate(c, old), invalid+"spec.controlPlane.replicas")
}

func TestValidateClusterUpdate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*cs.Cluster)
		want   []string
	}{
		"administrators may change": {func(c *cs.Cluster) {
			c.Spec.Administrators = append(c.Spec.Administrators, cs.Subject{Kind: cs.SubjectKindGroup, Name: "ops"})
		}, nil},
		"control plane cannot grow yet": {func(c *cs.Cluster) { c.Spec.ControlPlane.Replicas = 3 }, []string{invalid + "spec.controlPlane.replicas"}},
		"network is immutable":          {func(c *cs.Cluster) { c.Spec.Network.PodCIDRs = []string{"10.200.0.0/16"} }, []string{invalid + networkField}},
		"version cannot change":         {func(c *cs.Cluster) { c.Spec.Version = "v1.36.0" }, []string{unsupported + "spec.version", forbidden + "spec.version"}},
		"updates are validated too":     {func(c *cs.Cluster) { c.Spec.ControlPlane.Replicas = 5 }, []string{invalid + "spec.controlPlane.replicas"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			old, c := validCluster(), validCluster()
			tc.mutate(c)
			wantErrors(t, ValidateClusterUpdate(c, old), tc.want...)
		})
	}
}

func TestValidateClusterStatusUpdate(t *testing.T) {
	old, c := validCluster(), validCluster()
	c.Status.Nodes = cs.NodeCounts{Ready: 3, Total: 2}
	c.Status.ObservedGeneration = -1
	c.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: "Maybe", Reason: "x", LastTransitionTime: metav1.Now()}}
	wantErrors(t, ValidateClusterStatusUpdate(c, old),
		invalid+"status.nodes", invalid+"status.observedGeneration", unsupported+"status.conditions[0].status")
}

func validNode() *cs.Node {
	return &cs.Node{
		ObjectMeta: meta("prod-gpu-1"),
		Spec: cs.NodeSpec{
			ClusterName: "prod",
			Resources: cs.NodeResources{CPU: resource.MustParse("8"), Memory: resource.MustParse("32Gi"),
				GPU: &cs.GPUResources{Count: 1, Model: "nvidia-tesla-t4"}, Pods: 110},
			Labels: map[string]string{"pool": "gpu"},
			Taints: []cs.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: cs.TaintEffectNoSchedule}},
		},
	}
}

func TestValidateNode(t *testing.T) {
	tests := map[string]struct {
		mutate func(*cs.Node)
		want   []string
	}{
		"valid":                {func(*cs.Node) {}, nil},
		"no cluster":           {func(n *cs.Node) { n.Spec.ClusterName = "" }, []string{required + "spec.clusterName"}},
		"bad cluster name":     {func(n *cs.Node) { n.Spec.ClusterName = "Prod!" }, []string{invalid + "spec.clusterName"}},
		"zero cpu":             {func(n *cs.Node) { n.Spec.Resources.CPU = resource.Quantity{} }, []string{invalid + "spec.resources.cpu"}},
		"negative memory":      {func(n *cs.Node) { n.Spec.Resources.Memory = resource.MustParse("-1Gi") }, []string{invalid + "spec.resources.memory"}},
		"zero GPUs":            {func(n *cs.Node) { n.Spec.Resources.GPU.Count = 0 }, []string{invalid + "spec.resources.gpu.count"}},
		"bad GPU model":        {func(n *cs.Node) { n.Spec.Resources.GPU.Model = "tesla t4" }, []string{invalid + "spec.resources.gpu.model"}},
		"bad label key":        {func(n *cs.Node) { n.Spec.Labels = map[string]string{"bad key": "x"} }, []string{invalid + "spec.labels"}},
		"bad taint key":        {func(n *cs.Node) { n.Spec.Taints[0].Key = "a b" }, []string{invalid + "spec.taints[0].key"}},
		"bad taint effect":     {func(n *cs.Node) { n.Spec.Taints[0].Effect = "Evict" }, []string{unsupported + "spec.taints[0].effect"}},
		"bad taint value":      {func(n *cs.Node) { n.Spec.Taints[0].Value = "a b" }, []string{invalid + "spec.taints[0].value"}},
		"same taint twice":     {func(n *cs.Node) { n.Spec.Taints = append(n.Spec.Taints, n.Spec.Taints[0]) }, []string{duplicate + "spec.taints[1]"}},
		"name not a DNS label": {func(n *cs.Node) { n.Name = "gpu.1" }, []string{invalid + "metadata.name"}},
		"no pods":              {func(n *cs.Node) { n.Spec.Resources.Pods = 0 }, []string{invalid + "spec.resources.pods"}},
		"zero drain timeout":   {func(n *cs.Node) { n.Spec.DrainTimeout = &metav1.Duration{} }, []string{invalid + "spec.drainTimeout"}},
		"drain over a day":     {func(n *cs.Node) { n.Spec.DrainTimeout = &metav1.Duration{Duration: 25 * time.Hour} }, []string{invalid + "spec.drainTimeout"}},
		"the agent's mark": {func(n *cs.Node) {
			n.Spec.Labels = map[string]string{"app.kubernetes.io/managed-by": "containerservice"}
		},
			[]string{forbidden + "spec.labels[app.kubernetes.io/managed-by]"}},
		"a kubelet's label": {func(n *cs.Node) { n.Spec.Labels = map[string]string{"kubernetes.io/hostname": "other", "tier": "db"} },
			[]string{forbidden + "spec.labels[kubernetes.io/hostname]"}},
		"a GPU label": {func(n *cs.Node) { n.Spec.Labels = map[string]string{"nvidia.com/gpu.product": "A100"} },
			[]string{forbidden + "spec.labels[nvidia.com/gpu.product]"}},
		"a Kubernetes taint": {func(n *cs.Node) { n.Spec.Taints[0].Key = "node.kubernetes.io/not-ready" }, []string{forbidden + "spec.taints[0].key"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n := validNode()
			tc.mutate(n)
			wantErrors(t, ValidateNode(n), tc.want...)
		})
	}
}

func TestValidateNodeUpdate(t *testing.T) {
	old, n := validNode(), validNode()
	n.Spec.Unschedulable = true
	wantErrors(t, ValidateNodeUpdate(n, old))
	n.Spec.ClusterName = "dev"
	wantErrors(t, ValidateNodeUpdate(n, old), invalid+"spec.clusterName")

	// A reserved key stored before the rule came does not hold the Node (its finalizer's
	// removal is an update); a new one is refused.
	old, n = validNode(), validNode()
	old.Spec.Labels = map[string]string{"kubernetes.io/hostname": "x"}
	old.Spec.Taints = []cs.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: cs.TaintEffectNoSchedule}}
	n.Spec.Labels, n.Spec.Taints = old.Spec.Labels, old.Spec.Taints
	wantErrors(t, ValidateNodeUpdate(n, old))
	n.Spec.Labels = map[string]string{"kubernetes.io/hostname": "x", "kubernetes.io/os": "windows"}
	wantErrors(t, ValidateNodeUpdate(n, old), forbidden+"spec.labels[kubernetes.io/os]")
}

func TestValidateNodeStatusUpdate(t *testing.T) {
	old, n := validNode(), validNode()
	n.Status.Pods = -1
	n.Status.Allocatable = map[string]resource.Quantity{"cpu": resource.MustParse("-1")}
	n.Status.Drain = &cs.DrainStatus{PodsRemaining: -2}
	wantErrors(t, ValidateNodeStatusUpdate(n, old),
		invalid+"status.pods", invalid+"status.allocatable[cpu]", invalid+"status.drain.podsRemaining")
}

func validPlugin() *cs.Plugin {
	enabled := true
	return &cs.Plugin{
		ObjectMeta: meta("prod-monitoring"),
		Spec:       cs.PluginSpec{ClusterName: "prod", Type: "monitoring", Enabled: &enabled, Config: map[string]string{"retention": "15d"}},
	}
}

func TestValidatePlugin(t *testing.T) {
	tests := map[string]struct {
		mutate func(*cs.Plugin)
		want   []string
	}{
		"valid":          {func(*cs.Plugin) {}, nil},
		"no cluster":     {func(p *cs.Plugin) { p.Spec.ClusterName = "" }, []string{required + "spec.clusterName"}},
		"no type":        {func(p *cs.Plugin) { p.Spec.Type = "" }, []string{required + "spec.type"}},
		"enabled unset":  {func(p *cs.Plugin) { p.Spec.Enabled = nil }, []string{required + "spec.enabled"}},
		"bad config key": {func(p *cs.Plugin) { p.Spec.Config = map[string]string{"a b": "x"} }, []string{invalid + "spec.config[a b]"}},
		"config too large": {func(p *cs.Plugin) {
			p.Spec.Config = map[string]string{"big": strings.Repeat("x", maxPluginConfigBytes)}
		}, []string{tooLong + "spec.config"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := validPlugin()
			tc.mutate(p)
			wantErrors(t, ValidatePlugin(p), tc.want...)
		})
	}
}

func TestValidatePluginUpdate(t *testing.T) {
	old, p := validPlugin(), validPlugin()
	disabled := false
	p.Spec.Enabled = &disabled
	p.Spec.Config = map[string]string{"retention": "30d"}
	wantErrors(t, ValidatePluginUpdate(p, old))
	p.Spec.ClusterName, p.Spec.Type = "dev", "logging"
	wantErrors(t, ValidatePluginUpdate(p, old), invalid+"spec.clusterName", invalid+"spec.type")
}

func validProject() *cs.Project {
	return &cs.Project{
		ObjectMeta: meta("payments"),
		Spec: cs.ProjectSpec{
			DisplayName:     "Payments",
			Clusters:        []string{"prod", "dev"},
			Namespace:       "payments",
			NamespacePolicy: cs.ProjectNamespaceRetain,
			Members: []cs.ProjectMember{
				{Kind: cs.SubjectKindUser, Name: "bob@example.com", Role: cs.ProjectRoleEdit},
				{Kind: cs.SubjectKindGroup, Name: "payments-admins", Role: cs.ProjectRoleAdmin},
			},
		},
	}
}

func TestValidateProject(t *testing.T) {
	tests := map[string]struct {
		mutate func(*cs.Project)
		want   []string
	}{
		"valid":               {func(*cs.Project) {}, nil},
		"bad cluster name":    {func(p *cs.Project) { p.Spec.Clusters[1] = "Dev" }, []string{invalid + "spec.clusters[1]"}},
		"cluster twice":       {func(p *cs.Project) { p.Spec.Clusters[1] = "prod" }, []string{duplicate + "spec.clusters[1]"}},
		"no namespace":        {func(p *cs.Project) { p.Spec.Namespace = "" }, []string{required + "spec.namespace"}},
		"bad namespace":       {func(p *cs.Project) { p.Spec.Namespace = "pay_ments" }, []string{invalid + "spec.namespace"}},
		"kube-system taken":   {func(p *cs.Project) { p.Spec.Namespace = "kube-system" }, []string{forbidden + "spec.namespace"}},
		"platform ns taken":   {func(p *cs.Project) { p.Spec.Namespace = "ucs-users" }, []string{forbidden + "spec.namespace"}},
		"kube- prefix":        {func(p *cs.Project) { p.Spec.Namespace = "kube-flannel" }, []string{forbidden + "spec.namespace"}},
		"ucs- prefix":         {func(p *cs.Project) { p.Spec.Namespace = "ucs-audit" }, []string{forbidden + "spec.namespace"}},
		"unknown role":        {func(p *cs.Project) { p.Spec.Members[0].Role = "owner" }, []string{unsupported + "spec.members[0].role"}},
		"system: user":        {func(p *cs.Project) { p.Spec.Members[0].Name = "system:kube-controller-manager" }, []string{forbidden + "spec.members[0].name"}},
		"system: group":       {func(p *cs.Project) { p.Spec.Members[1].Name = "system:authenticated" }, []string{forbidden + "spec.members[1].name"}},
		"member kind unknown": {func(p *cs.Project) { p.Spec.Members[0].Kind = "Robot" }, []string{unsupported + "spec.members[0].kind"}},
		"member kind missing": {func(p *cs.Project) { p.Spec.Members[0].Kind = "" }, []string{required + "spec.members[0].kind"}},
		"unknown policy":      {func(p *cs.Project) { p.Spec.NamespacePolicy = "Archive" }, []string{unsupported + "spec.namespacePolicy"}},
		"platform group":      {func(p *cs.Project) { p.Spec.Members[1].Name = "ucs:breakglass" }, []string{forbidden + "spec.members[1].name"}},
		"member twice": {func(p *cs.Project) {
			p.Spec.Members = append(p.Spec.Members, cs.ProjectMember{Kind: cs.SubjectKindUser, Name: "bob@example.com", Role: cs.ProjectRoleView})
		}, []string{duplicate + "spec.members[2]"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := validProject()
			tc.mutate(p)
			wantErrors(t, ValidateProject(p), tc.want...)
		})
	}
}

func TestValidateProjectUpdate(t *testing.T) {
	old, p := validProject(), validProject()
	p.Spec.Clusters = []string{"prod"}
	p.Spec.Members = p.Spec.Members[:1]
	wantErrors(t, ValidateProjectUpdate(p, old))
	p.Spec.Namespace = "billing"
	wantErrors(t, ValidateProjectUpdate(p, old), invalid+"spec.namespace")
}

func TestValidateProjectStatusUpdate(t *testing.T) {
	old, p := validProject(), validProject()
	p.Status.Clusters = []cs.ProjectClusterStatus{{Name: ""}}
	p.Status.ObservedGeneration = -3
	wantErrors(t, ValidateProjectStatusUpdate(p, old), required+"status.clusters[0].name", invalid+"status.observedGeneration")
}

func TestValidatePluginStatusUpdate(t *testing.T) {
	old, p := validPlugin(), validPlugin()
	p.Status.Conditions = []metav1.Condition{{Type: "", Status: metav1.ConditionTrue, Reason: "Applied", LastTransitionTime: metav1.Now()}}
	wantErrors(t, ValidatePluginStatusUpdate(p, old), required+"status.conditions[0].type")
}

func TestMetadataUpdateRules(t *testing.T) {
	old, c := validCluster(), validCluster()
	c.Namespace = "other"
	wantErrors(t, ValidateClusterUpdate(c, old), invalid+"metadata.namespace")
}

func TestValidateAdminKubeconfigRequest(t *testing.T) {
	seconds := func(s int64) *int64 { return &s }
	tests := map[string]struct {
		spec cs.AdminKubeconfigRequestSpec
		want []string
	}{
		"an hour, external": {cs.AdminKubeconfigRequestSpec{ExpirationSeconds: seconds(3600), Endpoint: cs.EndpointExternal}, nil},
		"a day, internal":   {cs.AdminKubeconfigRequestSpec{ExpirationSeconds: seconds(86400), Endpoint: cs.EndpointInternal}, nil},
		"no lifetime":       {cs.AdminKubeconfigRequestSpec{Endpoint: cs.EndpointInternal}, []string{required + "spec.expirationSeconds"}},
		"too short":         {cs.AdminKubeconfigRequestSpec{ExpirationSeconds: seconds(60), Endpoint: cs.EndpointInternal}, []string{invalid + "spec.expirationSeconds"}},
		"longer than a day": {cs.AdminKubeconfigRequestSpec{ExpirationSeconds: seconds(86401), Endpoint: cs.EndpointInternal}, []string{invalid + "spec.expirationSeconds"}},
		"unknown endpoint":  {cs.AdminKubeconfigRequestSpec{ExpirationSeconds: seconds(3600), Endpoint: "public"}, []string{unsupported + "spec.endpoint"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wantErrors(t, ValidateAdminKubeconfigRequest(&cs.AdminKubeconfigRequest{Spec: tc.spec}), tc.want...)
		})
	}
}
