package bench

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// The figures here do not measure kovn; they say where a slow run spent
// its time: in the API server, or on a machine busy with something else.

// APIStat is how many requests of one kind the API server served during
// a run and how long they took on average (its own histogram).
type APIStat struct {
	Count  float64 `json:"count"`
	MeanMs float64 `json:"meanMs"`
}

// APIServerMetrics scrapes the API server's request and flow-control
// latencies.
func APIServerMetrics(ctx context.Context, cs kubernetes.Interface) (Metrics, error) {
	b, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	return parseMetrics(string(b), "apiserver_request_duration_seconds_", "apiserver_flowcontrol_request_wait_duration_seconds_"), nil
}

// EtcdMetrics scrapes etcd's disk latencies (it listens on loopback in
// the control-plane host), to tell a slow disk from a busy CPU.
func EtcdMetrics(ctx context.Context, sc *Scraper) (Metrics, error) {
	code, b, err := sc.getURL(ctx, "http://127.0.0.1:2379/metrics")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("etcd /metrics: HTTP %d", code)
	}
	return parseMetrics(string(b), "etcd_disk_wal_fsync_duration_seconds_", "etcd_disk_backend_commit_duration_seconds_"), nil
}

// APIStats turns two API server (or etcd) scrapes into "VERB resource[/sub]" →
// requests and mean latency, for what moved; flow-control queueing is
// reported as "APF wait <priority level>".
func APIStats(before, after Metrics) map[string]APIStat {
	label := regexp.MustCompile(`(\w+)="([^"]*)"`)
	sums, counts := map[string]float64{}, map[string]float64{}
	for series, v := range after {
		name, labels, _ := strings.Cut(series, "{")
		l := map[string]string{}
		for _, m := range label.FindAllStringSubmatch(labels, -1) {
			l[m[1]] = m[2]
		}
		key := l["verb"] + " " + l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		switch {
		case strings.HasPrefix(name, "apiserver_flowcontrol_"):
			key = "APF wait " + l["priority_level"]
		case strings.HasPrefix(name, "etcd_disk_"):
			key = "etcd " + strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(strings.TrimSuffix(name, "_sum"), "_count"), "etcd_disk_"), "_duration_seconds")
		}
		d := v - before[series]
		switch {
		case strings.HasSuffix(name, "_sum"):
			sums[key] += d
		case strings.HasSuffix(name, "_count"):
			counts[key] += d
		}
	}
	out := map[string]APIStat{}
	for k, c := range counts {
		if c > 0 {
			out[k] = APIStat{Count: c, MeanMs: round(sums[k]/c*1000, 1)}
		}
	}
	return out
}

// MachineCPU is the CPU time every core spent busy (not idle or waiting
// for I/O) since boot, from /proc/stat.
func MachineCPU() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy float64
	for i, s := range f[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest time is already in user
			busy += v
		}
	}
	return busy / clockTicks, nil
}

// LoadAverage is /proc/loadavg's first three fields.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// liveLookupWarning explains a run whose writes were each preceded by a
// live namespace lookup (see namespaceLookupTTL).
func liveLookupWarning(stats map[string]APIStat) []string {
	if g := stats["GET namespaces"]; g.Count > 0 {
		return []string{fmt.Sprintf("the API server looked namespaces up live %.0f times (a namespace of the same name was deleted < 30 s earlier): creates were slowed; run kovn-bench cleanup and start again", g.Count)}
	}
	return nil
}
