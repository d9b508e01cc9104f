package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// kovnNodeMetricsPort is kovn-node's default --metrics-address port, on
// each node host's loopback.
const kovnNodeMetricsPort = 9478

// cniAddMetric is kovn-node's histogram of CNI ADD by phase (annotation,
// plumbing, ovn-installed).
const cniAddMetric = "kovn_cni_add_phase_seconds"

// nodeMetrics fetches kovn-node's /metrics inside a node's network
// namespace.
func nodeMetrics(ctx context.Context, node string) (string, error) {
	// A client per node and no keep-alive: every node's listener is
	// 127.0.0.1:9478, so a pooled connection would reach the wrong node.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return lab.DialInNetNS(ctx, lab.NetNSPath(node), network, addr)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", kovnNodeMetricsPort), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return string(b), nil
}

// cniSnapshot is what the nodes' kovn-node metrics said at one moment.
type cniSnapshot struct {
	hists map[string]map[string]histogram // node → ADD phase → histogram
	ports float64                         // kovn_node_pod_ports, all states and nodes
}

func scrapeCNI(ctx context.Context, nodes []string) (cniSnapshot, error) {
	s := cniSnapshot{hists: map[string]map[string]histogram{}}
	for _, n := range nodes {
		text, err := nodeMetrics(ctx, n)
		if err != nil {
			return s, fmt.Errorf("kovn-node on %s /metrics: %w", n, err)
		}
		h, err := parseHistograms(text, cniAddMetric, "phase")
		if err != nil {
			return s, fmt.Errorf("kovn-node on %s: %w", n, err)
		}
		s.hists[n] = h
		s.ports += parseMetrics(text, "kovn_node_pod_ports").Sum("kovn_node_pod_ports")
	}
	return s, nil
}

// cniDelta sums, over the nodes, each ADD phase's histogram after minus
// before, and summarises it. A counter that went down means kovn-node
// restarted in between, and the difference would mean nothing.
func cniDelta(before, after cniSnapshot) (map[string]CNIPhase, error) {
	sum := map[string]histogram{}
	for node, phases := range after.hists {
		b, ok := before.hists[node]
		if !ok {
			return nil, fmt.Errorf("no earlier scrape of kovn-node on %s", node)
		}
		for ph, h := range b {
			if _, ok := phases[ph]; !ok && h.total() > 0 {
				return nil, fmt.Errorf("kovn-node on %s restarted during the phase (%s %q gone)", node, cniAddMetric, ph)
			}
		}
		for ph, h := range phases {
			d, ok := h.sub(b[ph])
			if !ok {
				return nil, fmt.Errorf("kovn-node on %s restarted during the phase (%s %q went down)", node, cniAddMetric, ph)
			}
			sum[ph] = sum[ph].add(d)
		}
	}
	out := map[string]CNIPhase{}
	for ph, h := range sum {
		if h.total() > 0 {
			out[ph] = h.summary()
		}
	}
	return out, nil
}

// histogram is one Prometheus histogram series: cumulative bucket counts
// by upper bound (+Inf included), its sum and count.
type histogram struct {
	buckets    map[float64]float64
	sum, count float64
}

// total is the observations counted, from the +Inf bucket.
func (h histogram) total() float64 { return h.buckets[math.Inf(1)] }

// sub is h minus b, bucket by bucket (b's missing buckets count as 0);
// ok is false when a counter went down.
func (h histogram) sub(b histogram) (histogram, bool) {
	d := histogram{buckets: map[float64]float64{}, sum: h.sum - b.sum, count: h.count - b.count}
	ok := d.count >= 0
	for le, v := range h.buckets {
		d.buckets[le] = v - b.buckets[le]
		ok = ok && d.buckets[le] >= 0
	}
	return d, ok
}

// add is h plus o, bucket by bucket.
func (h histogram) add(o histogram) histogram {
	s := histogram{buckets: map[float64]float64{}, sum: h.sum + o.sum, count: h.count + o.count}
	for le, v := range h.buckets {
		s.buckets[le] += v
	}
	for le, v := range o.buckets {
		s.buckets[le] += v
	}
	return s
}

// quantile estimates the q-quantile as Prometheus' histogram_quantile
// does: linear interpolation within the bucket holding the rank (from 0
// for the first bucket), and the largest finite bound when the rank falls
// in the +Inf bucket. It is NaN for an empty histogram.
func (h histogram) quantile(q float64) float64 {
	les := slices.Sorted(maps.Keys(h.buckets))
	n := len(les)
	if n < 2 || !math.IsInf(les[n-1], 1) || h.total() == 0 {
		return math.NaN()
	}
	rank := q * h.total()
	// The first finite bucket holding the rank; n-1 (+Inf) if none does.
	i := sort.Search(n-1, func(i int) bool { return h.buckets[les[i]] >= rank })
	if i == n-1 {
		return les[n-2]
	}
	if i == 0 && les[0] <= 0 {
		return les[0]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = les[i-1], h.buckets[les[i-1]]
	}
	return lo + (les[i]-lo)*(rank-below)/(h.buckets[les[i]]-below)
}

// summary is the histogram in milliseconds; h must not be empty.
func (h histogram) summary() CNIPhase {
	toMs := func(s float64) float64 { return round(s*1000, 3) }
	return CNIPhase{Count: int(math.Round(h.total())), MeanMs: toMs(h.sum / h.total()),
		P50Ms: toMs(h.quantile(0.5)), P99Ms: toMs(h.quantile(0.99))}
}

// parseHistograms reads the histogram name from a text exposition, one
// per value of the label by, with Prometheus' own parser.
func parseHistograms(text, name, by string) (map[string]histogram, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	out := map[string]histogram{}
	fam, ok := families[name]
	if !ok {
		return out, nil
	}
	if fam.GetType() != dto.MetricType_HISTOGRAM {
		return nil, fmt.Errorf("%s is a %s, not a histogram", name, fam.GetType())
	}
	for _, m := range fam.GetMetric() {
		key := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == by {
				key = l.GetValue()
			}
		}
		hm := m.GetHistogram()
		// The +Inf bucket is the sample count, whether or not the
		// exposition listed it.
		h := histogram{buckets: map[float64]float64{math.Inf(1): float64(hm.GetSampleCount())},
			sum: hm.GetSampleSum(), count: float64(hm.GetSampleCount())}
		for _, b := range hm.GetBucket() {
			h.buckets[b.GetUpperBound()] = float64(b.GetCumulativeCount())
		}
		out[key] = h
	}
	return out, nil
}
