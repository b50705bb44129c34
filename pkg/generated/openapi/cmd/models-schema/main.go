// Command models-schema prints the OpenAPI v2 definitions of the generated openapi
// package as one Swagger document. hack/update-codegen.sh feeds it to applyconfiguration-gen
// so that apply configurations know each list's merge keys.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/ucloudstack/containerservice/pkg/generated/openapi"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "models-schema: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	ref := func(name string) spec.Ref { return spec.MustCreateRef("#/definitions/" + name) }
	defs := openapi.GetOpenAPIDefinitions(ref)
	schemas := make(map[string]spec.Schema, len(defs))
	for name, def := range defs {
		s := def.Schema
		// Types that carry a separate v2 form (for example IntOrString) must be given in
		// that form, since the consumer reads Swagger 2.0.
		if v2, ok := def.Schema.Extensions[common.ExtensionV2Schema].(spec.Schema); ok {
			s = v2
		}
		schemas[name] = s
	}
	doc := spec.Swagger{SwaggerProps: spec.SwaggerProps{
		Swagger:     "2.0",
		Info:        &spec.Info{InfoProps: spec.InfoProps{Title: "containerservice", Version: "v1alpha1"}},
		Definitions: schemas,
	}}
	return json.NewEncoder(os.Stdout).Encode(&doc)
}
