package console

import (
	"fmt"
	"testing"
	"time"

	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
)

// TestWeightsFrameSteps: a weight holds from its re-weighting to the next,
// so the chart steps at each change and runs on to now; a re-weighting
// stamped after now (a clock ahead of the console's) ends the chart.
func TestWeightsFrameSteps(t *testing.T) {
	spec := experiments.Spec{Arms: []experiments.Arm{{Name: "fast"}, {Name: "typo"}}}
	t0 := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
	hist := []chexp.WeightsAt{
		{At: t0, Weights: map[string][]float64{"text": {0.5, 0.5}}},
		{At: t0.Add(time.Minute), Weights: map[string][]float64{"text": {0.2, 0.8}}},
	}
	render := func(now time.Time) map[string]string {
		got := map[string]string{}
		for _, s := range weightsFrame(spec, hist, now).Series {
			for _, p := range s.Points {
				got[s.Name] += fmt.Sprintf("%s=%.1f ", p.T.Sub(t0), p.V)
			}
		}
		return got
	}
	for _, tc := range []struct {
		now        time.Time
		fast, typo string
	}{
		{t0.Add(3 * time.Minute), "0s=0.5 1m0s=0.5 1m0s=0.2 3m0s=0.2 ", "0s=0.5 1m0s=0.5 1m0s=0.8 3m0s=0.8 "},
		{t0.Add(30 * time.Second), "0s=0.5 1m0s=0.5 1m0s=0.2 ", "0s=0.5 1m0s=0.5 1m0s=0.8 "},
	} {
		got := render(tc.now)
		if got["text fast"] != tc.fast || got["text typo"] != tc.typo {
			t.Errorf("now %s: fast %q typo %q; want %q and %q", tc.now.Sub(t0), got["text fast"], got["text typo"], tc.fast, tc.typo)
		}
	}
}
