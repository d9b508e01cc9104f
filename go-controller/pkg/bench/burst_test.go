package bench

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBurstSamples checks that the kept samples are the summaries'
// latencies, sorted, in ms, and that they sit beside the summaries in the
// report's JSON, omitted when there are none (reports from before).
func TestBurstSamples(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms ...int) []time.Time {
		out := make([]time.Time, len(ms))
		for i, m := range ms {
			out[i] = t0.Add(time.Duration(m) * time.Millisecond)
		}
		return out
	}
	// Three items: sent, answered, done.
	b := measureBurst(at(0, 5, 10), at(30, 15, 40), at(100, 35, 41))
	s := b.samples()
	for name, c := range map[string]struct{ got, want []float64 }{
		"api":        {s.APICreateMs, []float64{10, 30, 30}},
		"fromCreate": {s.LatencyFromCreateMs, []float64{30, 31, 100}},
		"fromAnswer": {s.LatencyFromAnswerMs, []float64{1, 20, 70}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %v, want %v", name, c.got, c.want)
		}
	}
	if d := Summarise(b.fromCreate); d.MaxMs != s.LatencyFromCreateMs[2] || d.P50Ms != s.LatencyFromCreateMs[1] {
		t.Errorf("summary %+v does not match samples %v", d, s.LatencyFromCreateMs)
	}

	for name, v := range map[string]any{
		"pods":     &PodsResult{BurstSamples: s},
		"services": &ServicesResult{BurstSamples: s},
		"policies": &PoliciesResult{BurstSamples: s},
	} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(j), `"latencyFromCreateMs":[30,31,100]`) {
			t.Errorf("%s: %s", name, j)
		}
	}
	j, err := json.Marshal(&PodsResult{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"apiCreateMs", "latencyFromCreateMs", "latencyFromAnswerMs"} {
		if strings.Contains(string(j), k) {
			t.Errorf("empty %s written: %s", k, j)
		}
	}
}
