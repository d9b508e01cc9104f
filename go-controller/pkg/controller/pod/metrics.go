package pod

import (
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// AddressMetrics is a collector of each node subnet's pod address use,
// read from the allocators at scrape time: kovn_subnet_addresses_allocated
// and kovn_subnet_addresses_capacity, by node and subnet. Nodes no longer
// in the API are left out.
func (c *Controller) AddressMetrics() prometheus.Collector {
	labels := []string{"node", "subnet"}
	return &addressCollector{c: c,
		allocated: prometheus.NewDesc("kovn_subnet_addresses_allocated",
			"pod addresses allocated in the node's subnet", labels, nil),
		capacity: prometheus.NewDesc("kovn_subnet_addresses_capacity",
			"pod addresses the node's subnet has (network, broadcast, gateway and management port excluded)", labels, nil),
	}
}

type addressCollector struct {
	c                   *Controller
	allocated, capacity *prometheus.Desc
}

func (a *addressCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- a.allocated
	ch <- a.capacity
}

func (a *addressCollector) Collect(ch chan<- prometheus.Metric) {
	a.c.mu.Lock()
	nodes := make(map[string]*nodeIPAM, len(a.c.nodes))
	for name, ni := range a.c.nodes {
		nodes[name] = ni
	}
	a.c.mu.Unlock()
	for name, ni := range nodes {
		if a.c.l.Nodes != nil {
			if _, err := a.c.l.Nodes.Get(name); apierrors.IsNotFound(err) {
				continue
			}
		}
		used, free := ni.alloc.Used(), ni.alloc.Free()
		subnet := ni.subnet.String()
		ch <- prometheus.MustNewConstMetric(a.allocated, prometheus.GaugeValue, float64(used), name, subnet)
		// In float64: Free saturates at MaxInt for an IPv6 subnet.
		ch <- prometheus.MustNewConstMetric(a.capacity, prometheus.GaugeValue, float64(used)+float64(free), name, subnet)
	}
}
