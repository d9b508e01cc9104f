// Package metrics holds the Prometheus collectors kovn's binaries share.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// Problems reports bad input the way an operator wants to find it: an
// Event on the object, a log line with its key, and a counter by reason.
type Problems struct {
	recorder record.EventRecorder
	count    *prometheus.CounterVec
}

// NewProblems registers kovn_object_problems_total (reg may be nil).
func NewProblems(recorder record.EventRecorder, reg prometheus.Registerer) *Problems {
	p := &Problems{recorder: recorder, count: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kovn_object_problems_total",
		Help: "objects kovn could not program, by kind and reason (see the object's Events)",
	}, []string{"kind", "reason"})}
	if reg != nil {
		reg.MustRegister(p.count)
	}
	return p
}

// Report records one problem with obj.
func (p *Problems) Report(obj runtime.Object, kind, reason, message string) {
	key, _ := cache.MetaNamespaceKeyFunc(obj)
	klog.InfoS("cannot program object", "kind", kind, "key", key, "reason", reason, "message", message)
	p.count.WithLabelValues(kind, reason).Inc()
	if p.recorder != nil {
		p.recorder.Event(obj, corev1.EventTypeWarning, reason, message)
	}
}

// Count reads the counter, for tests.
func (p *Problems) Count(kind, reason string) float64 {
	m := &prometheusMetric{}
	_ = p.count.WithLabelValues(kind, reason).Write(&m.Metric)
	return m.GetCounter().GetValue()
}
