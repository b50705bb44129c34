package plugin

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// Definitions (CustomResourceDefinitions) are read without their schemas. The controller
// needs of one only its metadata, its names and versions, and its status (is it
// established?); the monitoring add-on's ten schemas are 2.5 MB of JSON that decoded into
// maps were ~10 times that, at every apply and every look while they were established,
// for every cluster, and the heap a burst of enables grew to stayed.

const definitionsPath = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"

// isDefinition reports whether o is a definition of the version read leanly.
func isDefinition(o v1alpha1.AppliedObject) bool {
	return o.APIVersion == crdKind.APIVersion && o.Kind == crdKind.Kind
}

// leanDefinition is what is decoded of a definition: everything but its schemas.
type leanDefinition struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Group    string         `json:"group"`
		Names    map[string]any `json:"names,omitempty"`
		Scope    string         `json:"scope,omitempty"`
		Versions []struct {
			Name    string `json:"name"`
			Served  bool   `json:"served"`
			Storage bool   `json:"storage"`
		} `json:"versions,omitempty"`
	} `json:"spec"`
	Status map[string]any `json:"status,omitempty"`
}

// decodeDefinition decodes a definition without its schemas (nor its managed fields).
func decodeDefinition(body []byte) (*unstructured.Unstructured, error) {
	var d leanDefinition
	// Whole numbers stay int64 (status.observedGeneration), as kstatus reads them.
	if err := utiljson.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("decode a CustomResourceDefinition: %w", err)
	}
	d.Metadata.ManagedFields = nil
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&d)
	if err != nil {
		return nil, fmt.Errorf("decode a CustomResourceDefinition: %w", err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// getDefinition reads a definition, or nil when there is none.
func (d *dynamicCluster) getDefinition(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	return decodeAnswer(d.discovery.RESTClient().Get().AbsPath(definitionsPath + name).Do(ctx))
}

// applyDefinition server-side applies a definition as the platform's field manager.
func (d *dynamicCluster) applyDefinition(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(o.Object)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", describe(ref(o)), err)
	}
	return decodeAnswer(d.discovery.RESTClient().Patch(types.ApplyPatchType).AbsPath(definitionsPath+o.GetName()).
		Param("fieldManager", v1alpha1.PluginFieldManager).Param("force", "true").Body(data).Do(ctx))
}

// decodeAnswer decodes a definition the kube-apiserver answered with, or returns its error
// with the Status it sent (the reason and causes a refused definition is reported with).
func decodeAnswer(res rest.Result) (*unstructured.Unstructured, error) {
	if err := res.Error(); err != nil {
		return nil, err
	}
	body, err := res.Raw()
	if err != nil {
		return nil, err
	}
	return decodeDefinition(body)
}
