package console

import (
	"math"
	"testing"
)

// TestModelScoresWeighted: an audited failure (drawn at 4x the rate) counts
// a quarter as much as a pass in the weighted mean; an output logged before
// rates were recorded counts at the default rate; mirrors are left out.
func TestModelScoresWeighted(t *testing.T) {
	items := map[string]Output{
		"p1":  {Model: "fast", QAPass: true, SampleRate: 0.1},
		"f1":  {Model: "fast", QAPass: false, SampleRate: 0.4},
		"old": {Model: "typo", QAPass: true},
		"new": {Model: "typo", QAPass: true, SampleRate: 0.05},
		"m1":  {Model: "typo", QAPass: true, SampleRate: 0.05, Shadow: true},
	}
	overall := map[string][]float64{"p1": {5, 5}, "f1": {1}, "old": {4}, "new": {2}, "m1": {1}}
	got := modelScores(overall, items)
	if len(got) != 2 || got[0].Model != "fast" || got[1].Model != "typo" {
		t.Fatalf("scores = %+v, want fast and typo", got)
	}
	fast, typo := got[0], got[1]
	if fast.Reviewed != 2 || fast.Audited != 1 || fast.Mean != 3 || math.Abs(fast.WeightedMean-(5/0.1+1/0.4)/(1/0.1+1/0.4)) > 1e-12 {
		t.Errorf("fast = %+v, want 2 reviewed, 1 audited, mean 3, weighted 4.2", fast)
	}
	if typo.Reviewed != 2 || typo.Mean != 3 || typo.WeightedMean != 3 {
		t.Errorf("typo = %+v, want the mirror left out and the legacy row at the default rate (mean 3 both ways)", typo)
	}
}
