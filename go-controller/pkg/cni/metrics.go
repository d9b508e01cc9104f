package cni

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the CNI server's request metrics. NewServer makes them from
// ServerOptions.Registerer; a process that registers its metrics before
// the server exists makes them with NewMetrics and passes them in
// ServerOptions.Metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers kovn_cni_requests_total and
// kovn_cni_request_duration_seconds with reg (nil registers nothing).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kovn_cni_requests_total",
			Help: "CNI requests kovn-node answered, by command and result (ok, error, timeout)",
		}, []string{"command", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kovn_cni_request_duration_seconds",
			Help: "time kovn-node took to answer a CNI request, by command",
			// 5ms to ~80s: DEL/CHECK are fast, ADD waits for the pod's
			// annotation and for ovn-controller, up to the ADD timeout.
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 15),
		}, []string{"command"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

func (m *Metrics) observe(command, result string, d time.Duration) {
	switch command {
	case CommandAdd, CommandDel, CommandCheck, CommandStatus, CommandGC:
	default:
		command = "unknown" // the label must not take arbitrary values
	}
	m.requests.WithLabelValues(command, result).Inc()
	m.duration.WithLabelValues(command).Observe(d.Seconds())
}
