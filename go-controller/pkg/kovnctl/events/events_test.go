package events

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func event(name, component, typ, kind, obj, uid, reason string, last time.Time) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "team-b", Name: name},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Namespace: "team-b", Name: obj, UID: types.UID(uid)},
		Source:         corev1.EventSource{Component: component},
		Type:           typ, Reason: reason, Message: reason + " message", Count: 1,
		FirstTimestamp: metav1.NewTime(last.Add(-time.Minute)), LastTimestamp: metav1.NewTime(last),
	}
}

// Latest picks kovn-controller's newest Warning on the object: not another
// component's, not a Normal Event, not one on another kind or on an
// earlier pod of the same name.
func TestLatest(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	kc := fake.NewSimpleClientset(
		event("a", "kovn-controller", corev1.EventTypeWarning, "Pod", "bad", "uid-2", "IPConflict", now.Add(-5*time.Minute)),
		event("b", "kovn-controller", corev1.EventTypeWarning, "Pod", "bad", "uid-2", "IPOutOfRange", now.Add(-2*time.Minute)),
		event("c", "kubelet", corev1.EventTypeWarning, "Pod", "bad", "uid-2", "FailedCreatePodSandBox", now),
		event("d", "kovn-controller", corev1.EventTypeNormal, "Pod", "bad", "uid-2", "Programmed", now),
		event("e", "kovn-controller", corev1.EventTypeWarning, "Pod", "bad", "uid-1", "InvalidIPRequest", now),
		event("f", "kovn-controller", corev1.EventTypeWarning, "ExternalPort", "bad", "uid-2", "InvalidMAC", now),
		event("g", "kovn-controller", corev1.EventTypeWarning, "Pod", "other", "uid-3", "IPConflict", now),
	)
	e, err := Latest(context.Background(), kc, "Pod", "team-b", "bad", "uid-2")
	if err != nil {
		t.Fatal(err)
	}
	if e == nil || e.Name != "b" {
		t.Fatalf("latest %+v, want Event b", e)
	}
	if got, want := Describe(e, now), "IPOutOfRange: IPOutOfRange message (Warning Event from kovn-controller, once, last 2m0s ago)"; got != want {
		t.Errorf("Describe %q, want %q", got, want)
	}
	// Without a UID every incarnation counts.
	if e, _ := Latest(context.Background(), kc, "Pod", "team-b", "bad", ""); e == nil || e.Name != "e" {
		t.Errorf("latest of any incarnation %+v, want Event e", e)
	}
	if e, _ := Latest(context.Background(), kc, "Pod", "team-b", "fine", ""); e != nil {
		t.Errorf("an Event for a pod without one: %+v", e)
	}
}

// A repeated Event counts its series, and is as recent as its last.
func TestCountAndWhen(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := event("a", "kovn-controller", corev1.EventTypeWarning, "Pod", "bad", "", "IPConflict", now.Add(-time.Hour))
	e.Count = 4
	if Count(e) != 4 || !When(e).Equal(now.Add(-time.Hour)) {
		t.Errorf("count %d when %s", Count(e), When(e))
	}
	e.Series = &corev1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(now)}
	if Count(e) != 7 || !When(e).Equal(now) {
		t.Errorf("series: count %d when %s", Count(e), When(e))
	}
	if got := Describe(e, now.Add(-time.Second)); got != "IPConflict: IPConflict message (Warning Event from kovn-controller, 7 times, last 0s ago)" {
		t.Errorf("Describe with a clock behind: %q", got)
	}
}
