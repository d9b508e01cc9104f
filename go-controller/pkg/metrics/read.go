package metrics

import dto "github.com/prometheus/client_model/go"

// prometheusMetric is a writable metric value, for reading counters back.
type prometheusMetric struct{ dto.Metric }
