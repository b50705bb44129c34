package reconciler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// NewRecorder returns an Event recorder for our objects, writing Events to the host
// (where `kubectl describe` and the console read them, in the object's namespace) when
// client is set, and to the log alone otherwise. scheme must know our types, so that each
// Event names the object's kind and version. stop ends the recording.
func NewRecorder(client kubernetes.Interface, scheme *runtime.Scheme, component string) (recorder record.EventRecorder, stop func()) {
	broadcaster := record.NewBroadcaster()
	broadcaster.StartStructuredLogging(2)
	if client != nil {
		broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	}
	return broadcaster.NewRecorder(scheme, corev1.EventSource{Component: component}), broadcaster.Shutdown
}
