// Package metricsdoc compares the metrics a kovn binary registers with the
// table in docs/metrics.md, so that neither can change without the other.
// It is for tests only.
//
// A metric that has no series yet (a vector before its first observation,
// a collector with nothing to report) is absent from Gather, so the
// comparison works on what was registered: a Recorder wraps the binary's
// registry and keeps every collector registered through it, and Metrics
// reads their descriptions.
package metricsdoc

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Prefix is what every kovn metric's name starts with.
const Prefix = "kovn_"

// Metric is one metric as registered or as documented.
type Metric struct {
	Name string
	// Type is counter, gauge, histogram or summary; "" when a registered
	// collector's type cannot be told (it reported no series).
	Type string
	// Labels are the variable labels, sorted.
	Labels []string
	// Component is the documented component (controller or node).
	Component string
}

// Recorder is a prometheus.Registerer that passes registrations on and
// remembers the collectors.
type Recorder struct {
	prometheus.Registerer

	mu         sync.Mutex
	collectors []prometheus.Collector
}

// NewRecorder wraps reg.
func NewRecorder(reg prometheus.Registerer) *Recorder { return &Recorder{Registerer: reg} }

// Register registers c with the wrapped registerer and remembers it.
func (r *Recorder) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.collectors = append(r.collectors, c)
	r.mu.Unlock()
	return nil
}

// MustRegister is Register, panicking on an error like the registry's.
func (r *Recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister unregisters c and forgets it.
func (r *Recorder) Unregister(c prometheus.Collector) bool {
	r.mu.Lock()
	r.collectors = slices.DeleteFunc(r.collectors, func(x prometheus.Collector) bool { return x == c })
	r.mu.Unlock()
	return r.Registerer.Unregister(c)
}

// descRE reads a prometheus.Desc's String(), the only way to its name and
// variable labels from outside the library.
var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]*)", .*variableLabels: \{([^}]*)\}\}$`)

// parseDesc returns d's name and sorted variable labels.
func parseDesc(d *prometheus.Desc) (string, []string, error) {
	m := descRE.FindStringSubmatch(d.String())
	if m == nil {
		return "", nil, fmt.Errorf("cannot read metric description %s", d)
	}
	var labels []string
	if m[2] != "" {
		for _, l := range strings.Split(m[2], ",") {
			labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
		}
	}
	slices.Sort(labels)
	return m[1], labels, nil
}

// Metrics returns the kovn metrics of every collector registered through
// r, by name.
func (r *Recorder) Metrics() (map[string]Metric, error) {
	r.mu.Lock()
	cs := slices.Clone(r.collectors)
	r.mu.Unlock()
	out := map[string]Metric{}
	for _, c := range cs {
		types, err := collectedTypes(c)
		if err != nil {
			return nil, err
		}
		descs := make(chan *prometheus.Desc)
		go func() { c.Describe(descs); close(descs) }()
		for d := range descs {
			name, labels, err := parseDesc(d)
			if err != nil {
				return nil, err
			}
			if !strings.HasPrefix(name, Prefix) {
				continue
			}
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("%s is registered twice", name)
			}
			t := vectorType(c)
			if t == "" {
				t = types[name]
			}
			out[name] = Metric{Name: name, Type: t, Labels: labels}
		}
	}
	return out, nil
}

// vectorType is the type of a client_golang vector, which has no series
// (and so nothing to tell its type by) before its first observation.
func vectorType(c prometheus.Collector) string {
	switch c.(type) {
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	case *prometheus.HistogramVec:
		return "histogram"
	case *prometheus.SummaryVec:
		return "summary"
	}
	return ""
}

// collectedTypes collects c once and returns the type of each metric it
// reported, by name.
func collectedTypes(c prometheus.Collector) (map[string]string, error) {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	types := map[string]string{}
	var firstErr error
	for m := range ch {
		name, _, err := parseDesc(m.Desc())
		var d dto.Metric
		if err == nil {
			err = m.Write(&d)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		switch {
		case d.Counter != nil:
			types[name] = "counter"
		case d.Gauge != nil:
			types[name] = "gauge"
		case d.Histogram != nil:
			types[name] = "histogram"
		case d.Summary != nil:
			types[name] = "summary"
		}
	}
	return types, firstErr
}

// codeRE finds `code spans` in a table cell.
var codeRE = regexp.MustCompile("`([^`]+)`")

// ReadTable reads the metrics table of docs/metrics.md at path: the rows
// whose first cell is a `kovn_…` name, with the columns
// | metric | type | labels | component | meaning |.
func ReadTable(path string) (map[string]Metric, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]Metric{}
	sc := bufio.NewScanner(f)
	for line := 0; sc.Scan(); {
		line++
		cells := strings.Split(strings.Trim(strings.TrimSpace(sc.Text()), "|"), "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[0]), "`"+Prefix) {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s:%d: %s is in the table twice", path, line, name)
		}
		var labels []string
		for _, m := range codeRE.FindAllStringSubmatch(cells[2], -1) {
			labels = append(labels, m[1])
		}
		slices.Sort(labels)
		out[name] = Metric{
			Name: name, Type: strings.TrimSpace(cells[1]), Labels: labels,
			Component: strings.TrimSpace(cells[3]),
		}
	}
	return out, sc.Err()
}

// Compare lists the differences between the metrics a component
// registered and the table's rows for that component: names on one side
// only, and labels or types that differ (a type is compared only where the
// registered one is known).
func Compare(component string, registered, documented map[string]Metric) []string {
	var diffs []string
	for _, name := range sortedKeys(registered) {
		r := registered[name]
		d, ok := documented[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s (registered by %s) is not in docs/metrics.md", name, component))
			continue
		case d.Component != component:
			diffs = append(diffs, fmt.Sprintf("%s: docs/metrics.md says component %q, registered by %s", name, d.Component, component))
		}
		if !slices.Equal(r.Labels, d.Labels) {
			diffs = append(diffs, fmt.Sprintf("%s: labels %v registered, %v documented", name, r.Labels, d.Labels))
		}
		if r.Type != "" && r.Type != d.Type {
			diffs = append(diffs, fmt.Sprintf("%s: type %s registered, %s documented", name, r.Type, d.Type))
		}
	}
	for _, name := range sortedKeys(documented) {
		if _, ok := registered[name]; !ok && documented[name].Component == component {
			diffs = append(diffs, fmt.Sprintf("%s is documented for %s but not registered by it", name, component))
		}
	}
	return diffs
}

func sortedKeys(m map[string]Metric) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
