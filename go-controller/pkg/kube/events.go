package kube

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// ControllerComponent is the source component of kovn-controller's Events.
// The Warning Events on an object it could not program (an address out of
// range, a subnet exhausted) are the one record of why the object has no
// address or port, and kovnctl finds them by this name.
const ControllerComponent = "kovn-controller"

// NewEventRecorder records Events in the API as component. stop flushes
// and ends the recording.
func NewEventRecorder(ctx context.Context, kc kubernetes.Interface, component string) (rec record.EventRecorder, stop func()) {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kc.CoreV1().Events("")})
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component}), b.Shutdown
}
