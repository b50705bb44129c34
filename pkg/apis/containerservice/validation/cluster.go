package validation

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

// Limits on address ranges, checked here so that a bad range is refused at the API
// instead of crash-looping a control plane later.
//
// Pod ranges follow kube-controller-manager's node IPAM with its default node range sizes
// (/24 for IPv4, /64 for IPv6): the cluster range must hold at least one node range
// (nodeipam: "mask size of cluster CIDR must be less than or equal to
// --node-cidr-mask-size"), and an IPv6 range may be at most 16 bits larger than a node
// range (cidrset: ErrCIDRSetSubNetTooBig), so /48 to /64. IPv4 has no upper bound there.
//
// Service ranges: kube-apiserver needs at least 8 addresses in the primary range; we also
// keep every range within 20 host bits (a /12 for IPv4, /108 for IPv6), the classic
// allocator's limit, which keeps ranges sane (kube-apiserver itself would accept larger).
const (
	nodeMaskV4          = 24
	nodeMaskV6          = 64
	maxNodeRangesBitsV6 = 16
	maxServiceHostBits  = 20
	minServiceAddresses = 8
)

var ipFamilies = sets.New(string(cs.IPv4), string(cs.IPv6))

// ValidateCluster checks a Cluster being created.
func ValidateCluster(c *cs.Cluster) field.ErrorList {
	errs := validateObjectMeta(&c.ObjectMeta)
	return append(errs, validateClusterSpec(&c.Spec, nil, field.NewPath("spec"))...)
}

// ValidateClusterUpdate checks a change of a Cluster's spec and metadata. Fields left as
// they were are not checked again (ratcheting): a Cluster stored before a rule was
// tightened must still take its finalizer's removal, or it could never be deleted.
func ValidateClusterUpdate(c, old *cs.Cluster) field.ErrorList {
	errs := validateObjectMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateClusterSpec(&c.Spec, &old.Spec, field.NewPath("spec"))...)
	specPath := field.NewPath("spec")
	errs = append(errs, validateImmutable(c.Spec.Network, old.Spec.Network, specPath.Child("network"))...)
	if c.Spec.Version != old.Spec.Version {
		errs = append(errs, field.Forbidden(specPath.Child("version"),
			fmt.Sprintf("changing the version of a running cluster (from %s to %s) is not supported yet; create a new cluster with the version you need", old.Spec.Version, c.Spec.Version)))
	}
	return errs
}

// ValidateClusterStatusUpdate checks what a status writer reports.
func ValidateClusterStatusUpdate(c, old *cs.Cluster) field.ErrorList {
	errs := validateObjectMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
	fld := field.NewPath("status")
	errs = append(errs, validateConditions(c.Status.Conditions, fld.Child("conditions"))...)
	errs = append(errs, validateObservedGeneration(c.Status.ObservedGeneration, fld.Child("observedGeneration"))...)
	if c.Status.Nodes.Ready < 0 || c.Status.Nodes.Total < 0 || c.Status.Nodes.Ready > c.Status.Nodes.Total {
		errs = append(errs, field.Invalid(fld.Child("nodes"), c.Status.Nodes, "counts must be non-negative and ready at most total"))
	}
	return errs
}

// validateClusterSpec checks a spec; with old (an update), only the fields that changed.
func validateClusterSpec(spec, old *cs.ClusterSpec, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	changed := func(get func(*cs.ClusterSpec) any) bool {
		return old == nil || !apiequality.Semantic.DeepEqual(get(spec), get(old))
	}
	switch {
	case spec.Version == "":
		errs = append(errs, field.Required(fld.Child("version"), ""))
	case !slices.Contains(cs.SupportedKubernetesVersions, spec.Version) && changed(func(s *cs.ClusterSpec) any { return s.Version }):
		errs = append(errs, field.NotSupported(fld.Child("version"), spec.Version, cs.SupportedKubernetesVersions))
	}
	if spec.ControlPlane.Replicas != 1 && changed(func(s *cs.ClusterSpec) any { return s.ControlPlane }) {
		errs = append(errs, field.Invalid(fld.Child("controlPlane", "replicas"), spec.ControlPlane.Replicas,
			"must be 1: highly available control planes (3 replicas) are not supported yet"))
	}
	if changed(func(s *cs.ClusterSpec) any { return s.Network }) {
		errs = append(errs, validateClusterNetwork(&spec.Network, fld.Child("network"))...)
	}
	if changed(func(s *cs.ClusterSpec) any { return s.Administrators }) {
		errs = append(errs, validateSubjects(spec.Administrators, fld.Child("administrators"))...)
	}
	errs = append(errs, validateDrainTimeout(spec.NodeDrainTimeout, fld.Child("nodeDrainTimeout"))...)
	return errs
}

func validateSubjects(subjects []cs.Subject, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[cs.Subject]()
	for i, s := range subjects {
		p := fld.Index(i)
		errs = append(errs, validateSubjectKind(s.Kind, p.Child("kind"))...)
		errs = append(errs, validateSubjectName(s.Name, p.Child("name"))...)
		if seen.Has(s) {
			errs = append(errs, field.Duplicate(p, s))
		}
		seen.Insert(s)
	}
	return errs
}

func validateClusterNetwork(n *cs.ClusterNetwork, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	famPath := fld.Child("ipFamilies")
	switch {
	case len(n.IPFamilies) == 0:
		errs = append(errs, field.Required(famPath, "one family, or two for dual-stack"))
	case len(n.IPFamilies) > 2:
		errs = append(errs, field.TooMany(famPath, len(n.IPFamilies), 2))
	}
	for i, f := range n.IPFamilies {
		if !ipFamilies.Has(string(f)) {
			errs = append(errs, field.NotSupported(famPath.Index(i), f, sets.List(ipFamilies)))
		}
	}
	if len(n.IPFamilies) == 2 && n.IPFamilies[0] == n.IPFamilies[1] {
		errs = append(errs, field.Duplicate(famPath.Index(1), n.IPFamilies[1]))
	}
	if len(errs) > 0 {
		return errs // the ranges are checked against the families, which must make sense first
	}

	pods, podErrs := validateCIDRs(n.PodCIDRs, n.IPFamilies, fld.Child("podCIDRs"), podPrefixLimit)
	services, svcErrs := validateCIDRs(n.ServiceCIDRs, n.IPFamilies, fld.Child("serviceCIDRs"), servicePrefixLimit)
	errs = append(append(errs, podErrs...), svcErrs...)
	for i, s := range services {
		for j, p := range pods {
			if s != nil && p != nil && (s.Contains(p.IP) || p.Contains(s.IP)) {
				errs = append(errs, field.Invalid(fld.Child("serviceCIDRs").Index(i), n.ServiceCIDRs[i],
					fmt.Sprintf("overlaps spec.network.podCIDRs[%d] (%s)", j, n.PodCIDRs[j])))
			}
		}
	}
	return errs
}

// prefixLimit returns the error message for the index-th range (of prefix length ones in
// a family of bits) when it is too large or too small, or "".
type prefixLimit func(index, ones, bits int) string

func podPrefixLimit(_, ones, bits int) string {
	node := nodeMaskV4
	if bits == 128 {
		node = nodeMaskV6
	}
	if ones > node {
		return fmt.Sprintf("too small for node ranges: kube-controller-manager gives each node a /%d, so the prefix must be /%d or shorter", node, node)
	}
	if bits == 128 && node-ones > maxNodeRangesBitsV6 {
		return fmt.Sprintf("too large for kube-controller-manager's node ranges: an IPv6 pod range must be /%d or longer (at most 2^%d node ranges of /%d)",
			node-maxNodeRangesBitsV6, maxNodeRangesBitsV6, node)
	}
	return ""
}

func servicePrefixLimit(index, ones, bits int) string {
	if bits-ones > maxServiceHostBits {
		return fmt.Sprintf("too large: a service range may have at most %d host bits (/%d or longer)", maxServiceHostBits, bits-maxServiceHostBits)
	}
	if index == 0 && bits-ones < 3 {
		return fmt.Sprintf("too small: the primary service range needs at least %d addresses (/%d or shorter)", minServiceAddresses, bits-3)
	}
	return ""
}

// validateCIDRs checks that there is one well-formed range per family, in family order,
// and returns the parsed ranges (nil where unparsable) for the overlap check.
func validateCIDRs(cidrs []string, families []cs.IPFamily, fld *field.Path, limit prefixLimit) ([]*net.IPNet, field.ErrorList) {
	var errs field.ErrorList
	if len(cidrs) != len(families) {
		errs = append(errs, field.Invalid(fld, cidrs, fmt.Sprintf("must hold one range per IP family (%d)", len(families))))
	}
	nets := make([]*net.IPNet, len(cidrs))
	for i, c := range cidrs {
		p := fld.Index(i)
		prefix, err := netip.ParsePrefix(c)
		if err != nil || prefix.Addr().Is4In6() || prefix.Addr().Zone() != "" {
			errs = append(errs, field.Invalid(p, c, "must be a CIDR such as 10.244.0.0/16 or fd00:10:244::/56"))
			continue
		}
		if masked := prefix.Masked(); masked != prefix {
			errs = append(errs, field.Invalid(p, c, fmt.Sprintf("has host bits set; the range is %s", masked)))
			continue
		}
		if prefix.String() != c {
			errs = append(errs, field.Invalid(p, c, fmt.Sprintf("must be written in canonical form: %s", prefix)))
			continue
		}
		_, ipnet, _ := net.ParseCIDR(c)
		family := cs.IPv4
		if prefix.Addr().Is6() {
			family = cs.IPv6
		}
		if i < len(families) && family != families[i] {
			errs = append(errs, field.Invalid(p, c, fmt.Sprintf("must be an %s range to match spec.network.ipFamilies[%d]", families[i], i)))
			continue
		}
		ones, bits := ipnet.Mask.Size()
		if msg := limit(i, ones, bits); msg != "" {
			errs = append(errs, field.Invalid(p, c, msg))
			continue
		}
		nets[i] = ipnet
	}
	return nets, errs
}
