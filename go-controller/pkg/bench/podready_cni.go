package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

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
// per value of the label by. Every series read must have a +Inf bucket.
func parseHistograms(text, name, by string) (map[string]histogram, error) {
	out := map[string]histogram{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, name+"_") {
			continue // comments, blank lines, other families
		}
		series, labels, v, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		h, ok := out[labels[by]]
		if !ok {
			h = histogram{buckets: map[float64]float64{}}
		}
		switch series {
		case name + "_bucket":
			le, err := strconv.ParseFloat(labels["le"], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: bad le: %w", line, err)
			}
			h.buckets[le] = v
		case name + "_sum":
			h.sum = v
		case name + "_count":
			h.count = v
		default:
			continue // another family sharing the prefix
		}
		out[labels[by]] = h
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for k, h := range out {
		if _, ok := h.buckets[math.Inf(1)]; !ok {
			return nil, fmt.Errorf("%s{%s=%q} has no +Inf bucket", name, by, k)
		}
	}
	return out, nil
}

// parseSample splits a sample line, `name{l="v",…} value [timestamp]`,
// into its name, labels and value.
func parseSample(line string) (string, map[string]string, float64, error) {
	i := strings.IndexAny(line, "{ \t")
	if i <= 0 {
		return "", nil, 0, fmt.Errorf("no value")
	}
	name, rest := line[:i], line[i:]
	labels := map[string]string{}
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " \t,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || eq+1 >= len(rest) || rest[eq+1] != '"' {
				return "", nil, 0, fmt.Errorf("bad labels")
			}
			v, n, err := unquoteLabel(rest[eq+1:])
			if err != nil {
				return "", nil, 0, err
			}
			labels[strings.TrimSpace(rest[:eq])] = v
			rest = rest[eq+1+n:]
		}
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", nil, 0, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return name, labels, v, err
}

// unquoteLabel reads a quoted label value at the start of s, with the
// exposition format's escapes (\\, \", \n), and how many bytes it took.
func unquoteLabel(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 == len(s) {
				return "", 0, fmt.Errorf("unterminated label value")
			}
			i++
			if s[i] == 'n' {
				b.WriteByte('\n')
			} else {
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated label value")
}
