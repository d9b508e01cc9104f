package agent

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/cni"
	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
)

// Metrics are kovn-node's collectors and the state its /readyz reports.
// NewMetrics registers every collector at once, before Run, so /metrics
// lists them from the start; Run fills in the rest.
type Metrics struct {
	cni       *cni.Metrics
	addPhases *prometheus.HistogramVec
	delPhases *prometheus.HistogramVec
	purges    *prometheus.CounterVec

	// Set by Run: the OVS client once connected, and whether the CNI
	// server is listening with its configuration installed.
	ovs     atomic.Pointer[ovs.Client]
	serving atomic.Bool
}

// Pod port states of kovn_node_pod_ports.
const (
	portInstalled = "installed" // ovn-controller set ovn-installed
	portPending   = "pending"   // not yet
	portError     = "error"     // ovs-vswitchd could not open the interface
)

// NewMetrics registers kovn-node's metrics with reg (nil registers none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := prometheus.ExponentialBuckets(0.001, 2, 15)
	m := &Metrics{
		cni: cni.NewMetrics(reg),
		addPhases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kovn_cni_add_phase_seconds",
			Help:    "CNI ADD split into waiting for the pod annotation, plumbing, and waiting for ovn-installed",
			Buckets: buckets,
		}, []string{"phase"}),
		delPhases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kovn_cni_del_phase_seconds",
			Help:    "CNI DEL split into deleting the OVS port and deleting the veth",
			Buckets: buckets,
		}, []string{"phase"}),
		purges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kovn_node_datapath_flow_purges_total",
			Help: "purges of the userspace datapath's flow cache (netdev only), by reason (change, periodic) and result (ok, error)",
		}, []string{"reason", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.addPhases, m.delPhases, m.purges, &portsCollector{m: m, desc: prometheus.NewDesc(
			"kovn_node_pod_ports", "pod ports on br-int, by state (installed, pending, error)", []string{"state"}, nil)})
	}
	return m
}

// flowPurged counts one purge of ovs.FlowPurger.
func (m *Metrics) flowPurged(reason string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.purges.WithLabelValues(reason, result).Inc()
}

// Ready tells whether the agent can plug pods: it is connected to the
// local Open_vSwitch database and its CNI server is listening with the
// CNI configuration installed.
func (m *Metrics) Ready() bool {
	o := m.ovs.Load()
	return m.serving.Load() && o != nil && o.Connected()
}

// portsCollector counts the pod ports on br-int at scrape time, from the
// OVS client's cache; it reports nothing until the agent has connected.
type portsCollector struct {
	m    *Metrics
	desc *prometheus.Desc
}

func (c *portsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *portsCollector) Collect(ch chan<- prometheus.Metric) {
	o := c.m.ovs.Load()
	if o == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ports, err := o.Ports(ctx, "br-int")
	if err != nil {
		klog.ErrorS(err, "count pod ports for metrics")
		return
	}
	n := map[string]int{portInstalled: 0, portPending: 0, portError: 0}
	for _, p := range ports {
		if p.ExternalIDs[podKey] == "" {
			continue // the management port, tunnels, patch ports
		}
		switch {
		case p.Error != "" || p.OFPort < 0:
			n[portError]++
		case p.Installed:
			n[portInstalled]++
		default:
			n[portPending]++
		}
	}
	for state, v := range n {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v), state)
	}
}
