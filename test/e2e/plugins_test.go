package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// pluginEvent reports whether an Event of the reason, naming what, was recorded for the
// Plugin.
func pluginEvent(ctx context.Context, ns, plugin, reason, what string) (bool, error) {
	events, err := env.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + reason + ",involvedObject.kind=Plugin,involvedObject.name=" + plugin})
	if err != nil {
		return false, err
	}
	var seen []string
	for _, e := range events.Items {
		if strings.Contains(e.Message, what) {
			return true, nil
		}
		seen = append(seen, e.Message)
	}
	return false, fmt.Errorf("%s events: %q", reason, seen)
}

// waitPluginReady waits until the Plugin's status reflects its spec and every object is
// current.
func waitPluginReady(ctx context.Context, t *testing.T, ns, name string) *v1alpha1.Plugin {
	t.Helper()
	var p *v1alpha1.Plugin
	eventually(ctx, t, "plugin "+name+" Ready", func() (bool, error) {
		var err error
		if p, err = env.CS.ContainerserviceV1alpha1().Plugins(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		return p.Status.ObservedGeneration == p.Generation && p.Status.Phase == v1alpha1.PluginReady &&
				int(p.Status.CurrentObjects) == len(p.Status.Applied) && len(p.Status.Applied) > 0,
			fmt.Errorf("phase %s, %d/%d current, conditions %v", p.Status.Phase, p.Status.CurrentObjects, len(p.Status.Applied), p.Status.Conditions)
	})
	return p
}

func patchPlugin(ctx context.Context, t *testing.T, ns, name, patch string) {
	t.Helper()
	if _, err := env.CS.ContainerserviceV1alpha1().Plugins(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// objectClient reaches the applied objects of a Plugin inside the user cluster by kind.
type objectClient struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func (c objectClient) resource(o v1alpha1.AppliedObject) (dynamic.ResourceInterface, error) {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return nil, err
	}
	m, err := c.mapper.RESTMapping(gv.WithKind(o.Kind).GroupKind(), gv.Version)
	if err != nil {
		c.mapper.Reset()
		return nil, err
	}
	return c.dyn.Resource(m.Resource).Namespace(o.Namespace), nil
}

func (c objectClient) get(ctx context.Context, o v1alpha1.AppliedObject) (*unstructured.Unstructured, error) {
	r, err := c.resource(o)
	if err != nil {
		return nil, err
	}
	return r.Get(ctx, o.Name, metav1.GetOptions{})
}

// Objects of the monitoring add-on the test touches.
const (
	monitoringNamespace = "ucs-monitoring"
	operatorDeployment  = "prometheus-operator"
)

var (
	prometheusRef = v1alpha1.AppliedObject{APIVersion: "monitoring.coreos.com/v1", Kind: "Prometheus", Namespace: monitoringNamespace, Name: "main"}
	// rulesRef is the add-on's configuration a tenant might edit (it ships no ConfigMap:
	// its configuration is custom resources).
	rulesRef = v1alpha1.AppliedObject{APIVersion: "monitoring.coreos.com/v1", Kind: "PrometheusRule", Namespace: monitoringNamespace, Name: "ucs-monitoring"}
)

// TestPlugins enables the storage and monitoring add-ons on a cluster with three kwok
// nodes and uses them as a tenant would: a StatefulSet's claim is bound to a volume on the
// node its pod runs on, deleted with its claim (Delete) or kept (Retain); monitoring turns
// Ready with every object current, objects deleted or changed inside the cluster are put
// back, a change of retention writes the Prometheus object alone, and switching it off
// removes everything but a definition that still has a tenant's objects.
func TestPlugins(t *testing.T) {
	ctx := testContext(t, 8*time.Minute)
	ns := env.NewTenant(t)
	provision(ctx, t, ns, "addons")
	_, cfg := adminKubeconfig(ctx, t, env.CS, ns, "addons", 3600)
	user := kubernetes.NewForConfigOrDie(cfg)
	objects := objectClient{dyn: dynamic.NewForConfigOrDie(cfg), mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(user.Discovery()))}
	plugins := env.CS.ContainerserviceV1alpha1().Plugins(ns)
	volumes := filepath.Join(env.ClusterDir(ns, "addons"), "volumes")

	nodesUp := step(t, "three nodes", func(t *testing.T) {
		for _, n := range []string{"a", "b", "c"} {
			if _, err := env.CS.ContainerserviceV1alpha1().Nodes(ns).Create(ctx, workerNode(ns, "addons", n, 0), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range []string{"a", "b", "c"} {
			waitNodePhase(ctx, t, ns, n, v1alpha1.NodeReady)
		}
	})

	csi := step(t, "csi: the default class binds a StatefulSet's claim on its pod's node", func(t *testing.T) {
		needs(t, nodesUp, "three nodes")
		if _, err := plugins.Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "storage"},
			Spec: v1alpha1.PluginSpec{ClusterName: "addons", Type: "csi", Config: map[string]string{"default": "true"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPluginReady(ctx, t, ns, "storage")
		sc, err := user.StorageV1().StorageClasses().Get(ctx, v1alpha1.CSIStorageClassName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sc.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" || sc.Provisioner != v1alpha1.CSIDriverName {
			t.Errorf("StorageClass %s: annotations %v, provisioner %s", sc.Name, sc.Annotations, sc.Provisioner)
		}
		if _, err := user.StorageV1().CSIDrivers().Get(ctx, v1alpha1.CSIDriverName, metav1.GetOptions{}); err != nil {
			t.Errorf("CSIDriver: %v", err)
		}
		// No class named: the default one.
		if _, err := user.AppsV1().StatefulSets("default").Create(ctx, statefulSet("db"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var pod *corev1.Pod
		eventually(ctx, t, "the claim Bound and the pod Running", func() (bool, error) {
			pvc, err := user.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data-db-0", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if pod, err = user.CoreV1().Pods("default").Get(ctx, "db-0", metav1.GetOptions{}); err != nil {
				return false, err
			}
			return pvc.Status.Phase == corev1.ClaimBound && pod.Status.Phase == corev1.PodRunning, fmt.Errorf("claim %s, pod %s", pvc.Status.Phase, pod.Status.Phase)
		})
		pvc, _ := user.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data-db-0", metav1.GetOptions{})
		pv, err := user.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 || !slices.Equal(pv.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
			t.Errorf("PV capacity %s, access modes %v; want 1Gi, ReadWriteOnce", got.String(), pv.Spec.AccessModes)
		}
		if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != v1alpha1.CSIDriverName || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
			t.Errorf("PV source %+v, reclaim %s", pv.Spec.CSI, pv.Spec.PersistentVolumeReclaimPolicy)
		}
		if a := pv.Spec.NodeAffinity; a == nil || a.Required == nil || !strings.Contains(fmt.Sprint(a.Required.NodeSelectorTerms), pod.Spec.NodeName) {
			t.Errorf("PV node affinity %v, want the pod's node %s", a, pod.Spec.NodeName)
		}
		if _, err := os.Stat(filepath.Join(volumes, pv.Name)); err != nil {
			t.Errorf("the volume's directory: %v", err)
		}
		if err := user.AppsV1().StatefulSets("default").Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := user.CoreV1().PersistentVolumeClaims("default").Delete(ctx, pvc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "Delete: the PV and its directory gone", func() (bool, error) {
			_, err := user.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
			_, statErr := os.Stat(filepath.Join(volumes, pv.Name))
			return apierrors.IsNotFound(err) && os.IsNotExist(statErr), fmt.Errorf("PV: %v; directory: %v", err, statErr)
		})
	})

	step(t, "csi: Retain keeps the volume, Immediate binds without a pod", func(t *testing.T) {
		needs(t, csi, "the csi add-on")
		patchPlugin(ctx, t, ns, "storage", `{"spec":{"config":{"reclaimPolicy":"Retain","volumeBindingMode":"Immediate"}}}`)
		waitPluginReady(ctx, t, ns, "storage")
		sc, err := user.StorageV1().StorageClasses().Get(ctx, v1alpha1.CSIStorageClassName, metav1.GetOptions{})
		if err != nil || *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimRetain || *sc.VolumeBindingMode != "Immediate" {
			t.Fatalf("StorageClass after the change: %v %v", sc, err)
		}
		claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "keep"}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}}}}
		if _, err := user.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var pvName string
		eventually(ctx, t, "the claim Bound without a pod", func() (bool, error) {
			pvc, err := user.CoreV1().PersistentVolumeClaims("default").Get(ctx, "keep", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			pvName = pvc.Spec.VolumeName
			return pvc.Status.Phase == corev1.ClaimBound, fmt.Errorf("claim %s", pvc.Status.Phase)
		})
		if err := user.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "keep", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "Retain: the PV Released, its directory kept", func() (bool, error) {
			pv, err := user.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return pv.Status.Phase == corev1.VolumeReleased, fmt.Errorf("PV %s", pv.Status.Phase)
		})
		if _, err := os.Stat(filepath.Join(volumes, pvName)); err != nil {
			t.Errorf("a retained volume's directory: %v", err)
		}
		if err := user.CoreV1().PersistentVolumes().Delete(ctx, pvName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the retained PV deleted by hand", func() (bool, error) {
			_, err := user.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		})
		if _, err := os.Stat(filepath.Join(volumes, pvName)); err != nil {
			t.Errorf("the platform removed a retained volume's data: %v", err)
		}
	})

	monitoring := step(t, "monitoring: Ready with every object current, its storage on the csi class", func(t *testing.T) {
		needs(t, nodesUp, "three nodes")
		if _, err := plugins.Create(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "mon"},
			Spec: v1alpha1.PluginSpec{ClusterName: "addons", Type: "monitoring"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := waitPluginReady(ctx, t, ns, "mon")
		t.Logf("monitoring: %d objects current", p.Status.CurrentObjects)
		prom, err := objects.get(ctx, prometheusRef)
		if err != nil {
			t.Fatal(err)
		}
		if class, _, _ := unstructured.NestedString(prom.Object, "spec", "storage", "volumeClaimTemplate", "spec", "storageClassName"); csi && class != v1alpha1.CSIStorageClassName {
			t.Errorf("Prometheus storage class %q, want %s", class, v1alpha1.CSIStorageClassName)
		}
		out, err := env.Kubectl(ctx, nil, "get", "plugins", "-n", ns, "mon")
		if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d/%d", p.Status.CurrentObjects, len(p.Status.Applied))) {
			t.Errorf("kubectl get plugins does not show READY current/total: %s %v", out, err)
		}
	})

	step(t, "monitoring: a deleted Deployment and an edited rule are put back", func(t *testing.T) {
		needs(t, monitoring, "the monitoring add-on")
		deps := user.AppsV1().Deployments(monitoringNamespace)
		before, err := deps.Get(ctx, operatorDeployment, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := deps.Delete(ctx, before.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		rules, err := objects.resource(rulesRef)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rules.Patch(ctx, rulesRef.Name, types.MergePatchType, []byte(`{"spec":{"groups":[{"name":"tampered","rules":[]}]}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "both put back", func() (bool, error) {
			d, err := deps.Get(ctx, operatorDeployment, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			r, err := objects.get(ctx, rulesRef)
			if err != nil {
				return false, err
			}
			// Rule groups are a list keyed by name: the platform's groups come back, and a
			// group the tenant added stays the tenant's.
			groups, _, _ := unstructured.NestedSlice(r.Object, "spec", "groups")
			var names []string
			for _, g := range groups {
				name, _ := g.(map[string]any)["name"].(string)
				names = append(names, name)
			}
			return d.UID != before.UID && slices.Contains(names, "ucs-monitoring.workloads") && slices.Contains(names, "tampered"),
				fmt.Errorf("deployment uid %s (was %s), rule groups %v", d.UID, before.UID, names)
		})
		for _, what := range []string{"Deployment " + monitoringNamespace + "/" + operatorDeployment + " (deleted", "PrometheusRule " + monitoringNamespace + "/" + rulesRef.Name + " (changed"} {
			eventually(ctx, t, "an Event DriftRepaired names "+what, func() (bool, error) {
				return pluginEvent(ctx, ns, "mon", v1alpha1.PluginDriftRepairedReason, what)
			})
		}
		waitPluginReady(ctx, t, ns, "mon")
	})

	step(t, "monitoring: a new retention changes the Prometheus object and nothing else", func(t *testing.T) {
		needs(t, monitoring, "the monitoring add-on")
		p := waitPluginReady(ctx, t, ns, "mon")
		// Workloads' status moves on its own: for them, the generation says whether their
		// spec was written; for everything else, the resourceVersion.
		workload := func(o v1alpha1.AppliedObject) bool { return o.Kind == "Deployment" || o.Kind == "DaemonSet" }
		versions := map[v1alpha1.AppliedObject]string{}
		for _, o := range p.Status.Applied {
			got, err := objects.get(ctx, o)
			if err != nil {
				t.Fatalf("%s: %v", o.Name, err)
			}
			versions[o] = got.GetResourceVersion()
			if workload(o) {
				versions[o] = fmt.Sprint(got.GetGeneration())
			}
		}
		patchPlugin(ctx, t, ns, "mon", `{"spec":{"config":{"retention":"30d"}}}`)
		waitPluginReady(ctx, t, ns, "mon")
		for o, rv := range versions {
			got, err := objects.get(ctx, o)
			if err != nil {
				t.Fatalf("%s: %v", o.Name, err)
			}
			now := got.GetResourceVersion()
			if workload(o) {
				now = fmt.Sprint(got.GetGeneration())
			}
			if o == prometheusRef {
				if r, _, _ := unstructured.NestedString(got.Object, "spec", "retention"); r != "30d" || now == rv {
					t.Errorf("the Prometheus object: retention %q, written %v", r, now != rv)
				}
			} else if now != rv {
				t.Errorf("%s %s/%s was written by a change of retention", o.Kind, o.Namespace, o.Name)
			}
		}
	})

	step(t, "monitoring: switched off, everything goes but a definition a tenant still uses", func(t *testing.T) {
		needs(t, monitoring, "the monitoring add-on")
		p := waitPluginReady(ctx, t, ns, "mon")
		theirs := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
			"metadata": map[string]any{"name": "web", "namespace": "default"},
			"spec":     map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}}, "endpoints": []any{map[string]any{"port": "http"}}}}}
		smGVR := schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"}
		if _, err := objects.dyn.Resource(smGVR).Namespace("default").Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		patchPlugin(ctx, t, ns, "mon", `{"spec":{"enabled":false}}`)
		crd := v1alpha1.AppliedObject{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "servicemonitors.monitoring.coreos.com"}
		eventually(ctx, t, "Disabled, the used definition kept and named", func() (bool, error) {
			got, err := plugins.Get(ctx, "mon", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return got.Status.Phase == v1alpha1.PluginDisabled && len(got.Status.Applied) == 0 && slices.Contains(got.Status.Kept, crd),
				fmt.Errorf("phase %s, applied %d, kept %v", got.Status.Phase, len(got.Status.Applied), got.Status.Kept)
		})
		eventually(ctx, t, "an Event names the kept definition", func() (bool, error) {
			return pluginEvent(ctx, ns, "mon", "ObjectKept", "CustomResourceDefinition servicemonitors.monitoring.coreos.com")
		})
		for _, o := range p.Status.Applied {
			if o == crd {
				continue
			}
			eventually(ctx, t, "gone: "+o.Kind+" "+o.Name, func() (bool, error) {
				got, err := objects.get(ctx, o)
				if err != nil && (apierrors.IsNotFound(err) || strings.Contains(err.Error(), "no matches for kind")) {
					return true, nil
				}
				if err == nil && got.GetDeletionTimestamp() != nil {
					return true, nil // on its way out (a namespace finalizing)
				}
				return false, fmt.Errorf("still there: %v", err)
			})
		}
		if _, err := objects.dyn.Resource(smGVR).Namespace("default").Get(ctx, "web", metav1.GetOptions{}); err != nil {
			t.Errorf("the tenant's ServiceMonitor: %v", err)
		}
	})
}

func statefulSet(name string) *appsv1.StatefulSet {
	replicas := int32(1)
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.StatefulSetSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, ServiceName: name,
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "db", Image: "registry.k8s.io/pause:3.10",
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}}},
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}},
	}}
}
