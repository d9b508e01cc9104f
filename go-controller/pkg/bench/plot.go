package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotRun is the part of a Report the plots read. It is decoded apart
// from Report so that the plots need only the JSON names of the samples,
// not the Go types that carry them (the pod-ready scenario's among them),
// and so that reports written before the samples were kept still decode.
type plotRun struct {
	Enforce *struct {
		Clients []struct {
			Kind      string    `json:"kind"`
			DenyMs    []float64 `json:"denyMs"`
			RestoreMs []float64 `json:"restoreMs"`
		} `json:"clients"`
	} `json:"enforce"`
	PodReady *struct {
		Burst  *plotReady `json:"burst"`
		Steady *plotReady `json:"steady"`
	} `json:"podReady"`
	Services *struct {
		Shape struct {
			Services  int `json:"services"`
			Endpoints int `json:"endpoints"`
		} `json:"shape"`
		LatencyFromCreateMs []float64 `json:"latencyFromCreateMs"`
		Updates             *struct {
			LatencyFromAnswerMs []float64 `json:"latencyFromAnswerMs"`
		} `json:"endpointUpdates"`
	} `json:"services"`
	Pods *struct {
		Workload struct {
			Nodes int `json:"nodes"`
			Pods  int `json:"pods"`
		} `json:"workload"`
		LatencyFromCreateMs []float64 `json:"latencyFromCreateMs"`
		WatchFromAnswerMs   []float64 `json:"watchFromAnswerMs"`
		PortFromWatchMs     []float64 `json:"portFromWatchMs"`
	} `json:"pods"`
	Policies *struct {
		Policies            int       `json:"policies"`
		LatencyFromCreateMs []float64 `json:"latencyFromCreateMs"`
	} `json:"policies"`
}

type plotReady struct {
	ReadyMs []float64 `json:"readyMs"`
}

// series is one line of a figure: its samples in ms and the index of
// the run they come from.
type series struct {
	label string
	run   int
	ms    []float64
}

// figure is one PNG file: the CDFs of its series on shared axes.
type figure struct {
	file, title string
	series      []series
}

func (f *figure) add(label string, run int, ms []float64) {
	if len(ms) > 0 {
		f.series = append(f.series, series{label, run, ms})
	}
}

// figures gathers the samples of every run into the figures they belong
// to, in the order the scenarios run.
func figures(runs []plotRun) []*figure {
	enforce := &figure{file: "enforce.png", title: "enforce: deny policy created → first refused probe; deleted → first answered"}
	ready := &figure{file: "podready.png", title: "pod-ready: pod create sent → Ready"}
	pods := &figure{file: "pods.png", title: "pods: pod create sent → its logical switch port in NB"}
	split := &figure{file: "pods-split.png", title: "pods: create answered → kovn-bench's watch saw the pod → its port in NB"}
	services := &figure{file: "services.png", title: "services: Service create sent → its load balancer with its backends in NB"}
	updates := &figure{file: "services-endpoint-update.png", title: "services: endpoint update answered → VIP value changed in NB"}
	policies := &figure{file: "policies.png", title: "policies: create sent → its port group with its ACLs and ports in NB"}
	for i, r := range runs {
		r.addEnforce(enforce, i)
		r.addPodReady(ready, i)
		r.addPods(pods, split, i)
		r.addServices(services, updates, i)
		r.addPolicies(policies, i)
	}
	return []*figure{enforce, ready, pods, split, services, updates, policies}
}

func (r plotRun) addEnforce(f *figure, run int) {
	if r.Enforce == nil {
		return
	}
	for _, c := range r.Enforce.Clients {
		f.add(c.Kind+" deny", run, c.DenyMs)
		f.add(c.Kind+" restore", run, c.RestoreMs)
	}
}

func (r plotRun) addPodReady(f *figure, run int) {
	if r.PodReady == nil {
		return
	}
	if b := r.PodReady.Burst; b != nil {
		f.add("burst", run, b.ReadyMs)
	}
	if s := r.PodReady.Steady; s != nil {
		f.add("steady", run, s.ReadyMs)
	}
}

// addPods names a run's lines by its shape: runs of several shapes
// (W1, the smoke run, 50 nodes) share the figures.
func (r plotRun) addPods(pods, split *figure, run int) {
	p := r.Pods
	if p == nil {
		return
	}
	shape := fmt.Sprintf("%d pods / %d nodes", p.Workload.Pods, p.Workload.Nodes)
	pods.add(shape, run, p.LatencyFromCreateMs)
	split.add(shape+": answered → watch", run, p.WatchFromAnswerMs)
	split.add(shape+": watch → port", run, p.PortFromWatchMs)
}

func (r plotRun) addServices(services, updates *figure, run int) {
	s := r.Services
	if s == nil {
		return
	}
	shape := fmt.Sprintf("%d services × %d endpoints", s.Shape.Services, s.Shape.Endpoints)
	services.add(shape, run, s.LatencyFromCreateMs)
	if s.Updates != nil {
		updates.add(shape, run, s.Updates.LatencyFromAnswerMs)
	}
}

func (r plotRun) addPolicies(f *figure, run int) {
	if p := r.Policies; p != nil {
		f.add(fmt.Sprintf("%d policies", p.Policies), run, p.LatencyFromCreateMs)
	}
}

// Plot writes into outDir one PNG per figure that has samples in data (a
// Results, as kovn-bench merge writes, or a single Report): the empirical
// CDF of each series, latency in ms against the fraction of samples at
// or below it. It returns the files written; data without samples (a
// report from before they were kept) writes none and is no error.
func Plot(data []byte, outDir string) ([]string, error) {
	runs, err := decodeRuns(data)
	if err != nil {
		return nil, err
	}
	var written []string
	for _, f := range figures(runs) {
		if len(f.series) == 0 {
			continue
		}
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return written, err
		}
		path := filepath.Join(outDir, f.file)
		if err := f.draw(path); err != nil {
			return written, fmt.Errorf("%s: %w", path, err)
		}
		written = append(written, path)
	}
	return written, nil
}

// decodeRuns reads a Results, or a Report (which has no "runs") as one
// run; an empty Results read as a Report has nothing to plot either.
func decodeRuns(data []byte) ([]plotRun, error) {
	var res struct {
		Runs []plotRun `json:"runs"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, err
	}
	if res.Runs != nil {
		return res.Runs, nil
	}
	var one plotRun
	if err := json.Unmarshal(data, &one); err != nil {
		return nil, err
	}
	return []plotRun{one}, nil
}

// The plot's size; the legend adds its height below.
const plotWidth, plotHeight = 18 * vg.Centimeter, 11 * vg.Centimeter

func (f *figure) draw(path string) error {
	p := plot.New()
	p.Title.Text = f.title
	p.Y.Label.Text = "fraction of samples ≤ x"
	// Gridlines at the median, p90 and the top show the figures the
	// tables give.
	p.Y.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "0"}, {Value: 0.25, Label: "0.25"},
		{Value: 0.5, Label: "0.5"}, {Value: 0.75, Label: "0.75"}, {Value: 0.9, Label: "0.9"}, {Value: 1, Label: "1"}}
	// Set before the lines are added, which only widen the range: y
	// spans 0 to 1 whatever the samples, and a linear x starts at 0.
	p.Y.Min, p.Y.Max = 0, 1
	if f.logX() {
		p.X.Label.Text = "latency (ms, log scale)"
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	} else {
		p.X.Label.Text = "latency (ms)"
		p.X.Min = 0
	}
	p.Add(plotter.NewGrid())
	// The legend goes below the axes, not in a corner of them: a CDF can
	// run through any corner (a late start, an early top).
	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	// Repeated runs (REPEAT=N, or several services shapes) would give
	// lines of the same name: the run's place in the file tells them apart.
	many := slices.ContainsFunc(f.series, func(s series) bool { return s.run != f.series[0].run })
	for i, s := range f.series {
		l, err := plotter.NewLine(ecdf(s.ms))
		if err != nil {
			return err
		}
		l.StepStyle = plotter.PostStep
		l.Color, l.Dashes, l.Width = plotutil.Color(i), plotutil.Dashes(i), vg.Points(1.5)
		p.Add(l)
		label := fmt.Sprintf("%s (n=%d)", s.label, len(s.ms))
		if many {
			label = fmt.Sprintf("run %d: %s", s.run+1, label)
		}
		leg.Add(label, l)
	}
	margin := vg.Centimeter / 4
	legH := leg.Rectangle(draw.Canvas{}).Size().Y + 2*margin
	img := vgimg.New(plotWidth, plotHeight+legH)
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, 0, legH, 0))
	leg.Draw(draw.Crop(dc, 2*margin, 0, margin, -(plotHeight + margin)))
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(out)
	return errors.Join(err, out.Close())
}

// logX says whether the x axis should be logarithmic: when the largest
// sample is 30 times the smallest or more (enforce's restore tail of
// seconds beside tens of ms), a linear axis crowds the bulk of every line
// against 0. A sample of 0 or less (an endpoint update seen before its
// answer, a pod's watch event before its create's reply) has no place on
// a log axis, so it keeps the axis linear.
func (f *figure) logX() bool {
	lo, hi := math.Inf(1), 0.0
	for _, s := range f.series {
		lo, hi = min(lo, slices.Min(s.ms)), max(hi, slices.Max(s.ms))
	}
	return lo > 0 && hi >= 30*lo
}

// ecdf is the empirical CDF of ms as the corners of a post-step line:
// it rises from 0 at the smallest sample and by 1/n at each sample.
func ecdf(ms []float64) plotter.XYs {
	s := slices.Sorted(slices.Values(ms))
	pts := make(plotter.XYs, 0, len(s)+1)
	pts = append(pts, plotter.XY{X: s[0], Y: 0})
	for i, x := range s {
		pts = append(pts, plotter.XY{X: x, Y: float64(i+1) / float64(len(s))})
	}
	return pts
}
