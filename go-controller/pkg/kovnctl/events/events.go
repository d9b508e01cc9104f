// Package events finds the Warning Events kovn-controller records on the
// objects it cannot program (metrics.Problems): a pod whose requested
// address is out of range, a node subnet that is full, an ExternalPort
// whose spec.ip is taken. Such an object has no rows in NB, so its Events
// are the one place that says why, and kovnctl quotes them instead of
// guessing.
package events

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
)

// Warnings are kovn-controller's Warning Events on objects of one kind.
type Warnings struct {
	kind   string
	events []corev1.Event
}

// List reads kovn-controller's Warning Events on objects of kind (Pod,
// ExternalPort, …): in namespace ns ("" for all) and, when name is not
// "", on that object only. The API server filters by the field selector;
// the filter is applied here again because not every server (nor the fake
// clientset) does.
func List(ctx context.Context, kc kubernetes.Interface, kind, ns, name string) (*Warnings, error) {
	sel := fields.Set{"source": kube.ControllerComponent, "type": corev1.EventTypeWarning, "involvedObject.kind": kind}
	if name != "" {
		sel["involvedObject.name"] = name
	}
	l, err := kc.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return nil, err
	}
	w := &Warnings{kind: kind}
	for _, e := range l.Items {
		if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Kind == kind && fromController(&e) {
			w.events = append(w.events, e)
		}
	}
	return w, nil
}

func fromController(e *corev1.Event) bool {
	return e.Source.Component == kube.ControllerComponent || e.ReportingController == kube.ControllerComponent
}

// Latest is the most recent Warning on the object ns/name, nil when there
// is none. With uid, Events on an earlier object of the same name are
// left out.
func (w *Warnings) Latest(ns, name, uid string) *corev1.Event {
	if w == nil {
		return nil
	}
	var latest *corev1.Event
	for i := range w.events {
		e := &w.events[i]
		o := e.InvolvedObject
		if o.Namespace != ns || o.Name != name || (uid != "" && o.UID != "" && string(o.UID) != uid) {
			continue
		}
		if latest == nil || When(e).After(When(latest)) {
			latest = e
		}
	}
	return latest
}

// Latest reads the most recent Warning kovn-controller recorded on one
// object (see Warnings.Latest); nil when there is none.
func Latest(ctx context.Context, kc kubernetes.Interface, kind, ns, name, uid string) (*corev1.Event, error) {
	w, err := List(ctx, kc, kind, ns, name)
	if err != nil {
		return nil, err
	}
	return w.Latest(ns, name, uid), nil
}

// When is when the Event last happened: a recorder that sees the same
// Event again raises its count and lastTimestamp (or, with the events.k8s.io
// API, its series) rather than writing a new one.
func When(e *corev1.Event) time.Time {
	t := e.CreationTimestamp.Time
	for _, x := range []time.Time{e.FirstTimestamp.Time, e.LastTimestamp.Time, e.EventTime.Time} {
		if x.After(t) {
			t = x
		}
	}
	if e.Series != nil && e.Series.LastObservedTime.After(t) {
		t = e.Series.LastObservedTime.Time
	}
	return t
}

// Count is how many times the Event happened.
func Count(e *corev1.Event) int32 {
	if e.Series != nil && e.Series.Count > e.Count {
		return e.Series.Count
	}
	return max(e.Count, 1)
}

// Describe is the Event in one line: "IPOutOfRange: MESSAGE (Warning
// Event from kovn-controller, 3 times, last 2m0s ago)".
func Describe(e *corev1.Event, now time.Time) string {
	return fmt.Sprintf("%s: %s (Warning Event from %s, %s, last %s ago)", e.Reason, e.Message, kube.ControllerComponent,
		times(Count(e)), max(now.Sub(When(e)), 0).Round(time.Second))
}

func times(n int32) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}
