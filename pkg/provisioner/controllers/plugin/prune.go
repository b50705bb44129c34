package plugin

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// keptObject is an object of the inventory left in the cluster, and why.
type keptObject struct {
	ref v1alpha1.AppliedObject
	why string
}

// prune deletes the objects of old that keep does not list, when they still carry this
// Plugin's label, except those that hold data, which are returned: a volume claim
// always; a definition while any object of its kinds exists (it would take them along);
// a namespace while it holds anything the plugin did not make. Objects go before the
// definitions and namespaces that hold them, so that what the plugin made of a kind does
// not keep its own definition.
func prune(ctx context.Context, t Target, plugin string, old, keep []v1alpha1.AppliedObject) ([]keptObject, error) {
	var kept []keptObject
	for _, pass := range []int{1, 0} {
		for _, o := range old {
			if stage(o.Kind) != pass || slices.Contains(keep, o) {
				continue
			}
			why, err := holdsData(ctx, t, plugin, o)
			if err != nil {
				return kept, err
			}
			if why != "" {
				kept = append(kept, keptObject{ref: o, why: why})
				continue
			}
			if err := t.Delete(ctx, o, plugin); err != nil {
				return kept, remote("remove "+describe(o), err)
			}
		}
	}
	return kept, nil
}

// holdsData says why an object must stay, or "".
func holdsData(ctx context.Context, t Target, plugin string, o v1alpha1.AppliedObject) (string, error) {
	switch o.Kind {
	case "PersistentVolumeClaim":
		return "a volume claim may hold data", nil
	case "CustomResourceDefinition":
		instance, err := t.Instance(ctx, o.Name)
		if err != nil {
			return "", remote("look for objects of "+o.Name, err)
		}
		if instance != "" {
			return "objects of its kinds exist (" + instance + ")", nil
		}
	case "Namespace":
		other, err := t.Foreign(ctx, o.Name, plugin)
		if err != nil {
			return "", remote("look into namespace "+o.Name, err)
		}
		if other != "" {
			return "it holds " + other + ", which the plugin did not make", nil
		}
	}
	return "", nil
}

// nsObject is an object found in a namespace, by its group, kind and resource.
type nsObject struct {
	group, kind, resource string
	meta                  *metav1.PartialObjectMetadata
}

// firstForeign returns the first object of a namespace that is someone else's, or nil. An
// object is the plugin's when it carries its label, or when it was made on behalf of one
// that is (an owner in the same namespace that is the plugin's, recursively: a Deployment's
// ReplicaSets and pods). An owner outside the namespace, or gone, does not count: what it
// owns would outlive it, and must not die with the namespace. Kubernetes' own objects of
// every namespace (the default ServiceAccount, the root CA, Events, Endpoints, Leases)
// are no one's.
func firstForeign(objs []nsObject, plugin string) *nsObject {
	byUID := make(map[types.UID]int, len(objs))
	for i, o := range objs {
		byUID[o.meta.UID] = i
	}
	const (
		unknown = iota
		visiting
		ours
		theirs
	)
	state := make([]int, len(objs))
	var isOurs func(i int) bool
	isOurs = func(i int) bool {
		switch state[i] {
		case ours:
			return true
		case theirs, visiting: // an ownership cycle proves nothing
			return false
		}
		state[i] = visiting
		o := objs[i]
		ok := o.meta.Labels[v1alpha1.PluginLabel] == plugin || kubernetesOwn(o)
		for _, owner := range o.meta.OwnerReferences {
			if ok {
				break
			}
			if j, found := byUID[owner.UID]; found {
				ok = isOurs(j)
			}
		}
		state[i] = theirs
		if ok {
			state[i] = ours
		}
		return ok
	}
	for i := range objs {
		if !isOurs(i) {
			return &objs[i]
		}
	}
	return nil
}

// kubernetesOwn reports whether Kubernetes puts the object into every namespace, or keeps
// it for others.
func kubernetesOwn(o nsObject) bool {
	switch {
	case o.group == "" && o.kind == "ServiceAccount" && o.meta.Name == "default",
		o.group == "" && o.kind == "ConfigMap" && o.meta.Name == "kube-root-ca.crt",
		o.kind == "Event", o.group == "" && o.kind == "Endpoints", o.group == "coordination.k8s.io" && o.kind == "Lease":
		return true
	}
	return false
}

// describeMeta names an object found by a list of a resource.
func describeMeta(resource string, o *metav1.PartialObjectMetadata) string {
	if o.Namespace == "" {
		return fmt.Sprintf("%s %s", resource, o.Name)
	}
	return fmt.Sprintf("%s %s/%s", resource, o.Namespace, o.Name)
}
