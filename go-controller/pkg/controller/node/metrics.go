package node

import "github.com/prometheus/client_golang/prometheus"

// SubnetMetrics is a collector of the node subnets carved from the cluster
// CIDRs, read from the allocator at scrape time:
// kovn_cluster_subnets_allocated and kovn_cluster_subnets_capacity.
func (c *Controller) SubnetMetrics() prometheus.Collector {
	return &subnetCollector{c: c,
		allocated: prometheus.NewDesc("kovn_cluster_subnets_allocated",
			"node subnets allocated from the cluster CIDRs", nil, nil),
		capacity: prometheus.NewDesc("kovn_cluster_subnets_capacity",
			"node subnets the cluster CIDRs hold", nil, nil),
	}
}

type subnetCollector struct {
	c                   *Controller
	allocated, capacity *prometheus.Desc
}

func (s *subnetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.allocated
	ch <- s.capacity
}

func (s *subnetCollector) Collect(ch chan<- prometheus.Metric) {
	used, total := s.c.subnets.Stats()
	ch <- prometheus.MustNewConstMetric(s.allocated, prometheus.GaugeValue, float64(used))
	ch <- prometheus.MustNewConstMetric(s.capacity, prometheus.GaugeValue, float64(total))
}
