package nbops

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

type metrics struct {
	txns     *prometheus.CounterVec
	ops      prometheus.Counter
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kovn_nb_transactions_total",
			Help: "NB database transactions sent, by result (ok or error).",
		}, []string{"result"}),
		ops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kovn_nb_operations_total",
			Help: "Operations sent in NB database transactions.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kovn_nb_transaction_duration_seconds",
			Help: "Time from sending an NB transaction to its reply.",
			// 250µs to ~8s: a small transaction on a local NB takes well
			// under a millisecond, a large one on a loaded RAFT cluster
			// seconds.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}),
	}
	if reg != nil {
		m.txns = register(reg, m.txns)
		m.ops = register(reg, m.ops)
		m.duration = register(reg, m.duration)
	}
	return m
}

// register reuses a collector already registered under the same name, so
// several Transactors (one per test, or per client) can share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil {
		// Metrics are not worth failing the controller for.
		klog.ErrorS(err, "Cannot register NB transaction metric")
	}
	return c
}

func (m metrics) observe(ok bool, ops int, d time.Duration) {
	result := "ok"
	if !ok {
		result = "error"
	}
	m.txns.WithLabelValues(result).Inc()
	m.ops.Add(float64(ops))
	m.duration.Observe(d.Seconds())
}
