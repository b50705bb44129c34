package apiserver

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/install"
)

var (
	// Scheme knows every type the server serves, internal and versioned.
	Scheme = runtime.NewScheme()
	// Codecs encodes and decodes the served types.
	Codecs = serializer.NewCodecFactory(Scheme)
	// groupCodecs serve our API group: Codecs without protobuf, which our types do not
	// implement. A client that accepts protobuf or JSON (kube-controller-manager's
	// metadata clients: the namespace controller, garbage collector, quota) then gets
	// JSON, rather than a 500 when its list or deletecollection response cannot be
	// encoded. Meta types (PartialObjectMetadataList, Table) are served as JSON too.
	groupCodecs runtime.NegotiatedSerializer = withoutProtobuf{Codecs}
)

// withoutProtobuf offers every media type of its serializer but protobuf.
type withoutProtobuf struct{ runtime.NegotiatedSerializer }

func (w withoutProtobuf) SupportedMediaTypes() []runtime.SerializerInfo {
	var infos []runtime.SerializerInfo
	for _, info := range w.NegotiatedSerializer.SupportedMediaTypes() {
		if info.MediaType != runtime.ContentTypeProtobuf {
			infos = append(infos, info)
		}
	}
	return infos
}

func init() {
	install.Install(Scheme)
	// The generic server decodes list and get options as unversioned meta/v1 types.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	Scheme.AddUnversionedTypes(schema.GroupVersion{Group: "", Version: "v1"},
		&metav1.Status{},
		&metav1.APIVersions{},
		&metav1.APIGroupList{},
		&metav1.APIGroup{},
		&metav1.APIResourceList{},
	)
}
