package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// Replica is one kovn-controller process of the lab.
type Replica struct {
	Index     int    `json:"index"`
	Identity  string `json:"identity"`  // controller-N, the Lease holder identity
	Component string `json:"component"` // kovn-controller:N, the supervisor's name
	Pid       int    `json:"pid"`
}

// ReplicaAt describes replica i of a lab.
func ReplicaAt(l *lab.Lab, i int) Replica {
	name := "kovn-controller:" + strconv.Itoa(i)
	return Replica{Index: i, Identity: "controller-" + strconv.Itoa(i), Component: name, Pid: l.Supervisor().Pid(name)}
}

// LeaseHolder is the identity holding kovn's Lease, "" when none.
func LeaseHolder(ctx context.Context, cs kubernetes.Interface) (string, error) {
	lease, err := cs.CoordinationV1().Leases("kovn-system").Get(ctx, "kovn-controller", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// Leader finds the replica holding the Lease.
func Leader(ctx context.Context, l *lab.Lab, cs kubernetes.Interface) (Replica, error) {
	id, err := LeaseHolder(ctx, cs)
	if err != nil {
		return Replica{}, fmt.Errorf("kovn-controller lease: %w", err)
	}
	for i := 0; i < lab.ControllerReplicas; i++ {
		if r := ReplicaAt(l, i); r.Identity == id {
			if r.Pid == 0 {
				return r, fmt.Errorf("leader %s has no pid file (is %s running?)", id, r.Component)
			}
			return r, nil
		}
	}
	return Replica{}, fmt.Errorf("lease held by %q, which is none of the lab's replicas", id)
}

// Scraper reads a replica's metrics endpoint inside the control-plane
// host, where the lab binds it to loopback.
type Scraper struct{ http *http.Client }

// NewScraper dials through the control-plane network namespace.
func NewScraper() *Scraper {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return lab.DialInNetNS(ctx, lab.NetNSPath("cp"), network, addr)
		},
		// A killed replica leaves dead keep-alive connections behind.
		DisableKeepAlives: true,
	}
	return &Scraper{http: &http.Client{Transport: tr, Timeout: 2 * time.Second}}
}

func (s *Scraper) get(ctx context.Context, r Replica, path string) (int, []byte, error) {
	return s.getURL(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", lab.ControllerMetricsPort(r.Index), path))
}

// getURL fetches a URL as seen from inside the control-plane host.
func (s *Scraper) getURL(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Ready is true when the replica's /readyz answers 200.
func (s *Scraper) Ready(ctx context.Context, r Replica) bool {
	code, _, err := s.get(ctx, r, "/readyz")
	return err == nil && code == http.StatusOK
}

// Metrics is a scrape: series (name plus labels, as exposed) → value.
type Metrics map[string]float64

// Scrape reads the replica's metrics.
func (s *Scraper) Scrape(ctx context.Context, r Replica) (Metrics, error) {
	code, b, err := s.get(ctx, r, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: HTTP %d", r.Component, code)
	}
	return ParseMetrics(string(b)), nil
}

// ParseMetrics reads Prometheus text exposition, keeping kovn's and the
// process collector's series.
func ParseMetrics(text string) Metrics { return parseMetrics(text, "kovn_", "process_") }

// parseMetrics keeps the series whose name starts with one of prefixes,
// without histogram buckets: enough to explain a run without pulling in a
// parser.
func parseMetrics(text string, prefixes ...string) Metrics {
	m := Metrics{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.Contains(line, "_bucket{") || !hasAnyPrefix(line, prefixes) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Sum adds every series of a metric name, whatever its labels.
func (m Metrics) Sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// Delta is after minus before for every counter-like series that moved;
// series missing before count from zero (a fresh process).
func Delta(before, after Metrics) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if strings.HasPrefix(k, "process_") && !strings.HasPrefix(k, "process_cpu_seconds_total") {
			continue // gauges (memory, fds, start time): deltas mean nothing
		}
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// ProcStat is what /proc says about a process.
type ProcStat struct {
	CPUSeconds float64 `json:"cpuSeconds"` // utime+stime since start
	HWMBytes   int64   `json:"peakRssBytes"`
	RSSBytes   int64   `json:"rssBytes"`
}

// clockTicks is USER_HZ, fixed at 100 on every Linux architecture Go
// supports; reading it would need cgo (sysconf).
const clockTicks = 100

// ReadProc reads utime+stime and VmHWM/VmRSS of pid.
func ReadProc(pid int) (ProcStat, error) {
	var st ProcStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the parenthesised command name, which may hold spaces:
	// state is field 3, utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return st, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	sys, _ := strconv.ParseFloat(f[12], 64)
	st.CPUSeconds = (ut + sys) / clockTicks
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(s), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			st.HWMBytes = kb * 1024
		case "VmRSS":
			st.RSSBytes = kb * 1024
		}
	}
	return st, nil
}
