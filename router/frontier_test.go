package router_test

import (
	"math"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

func TestPick(t *testing.T) {
	tests := []struct {
		name     string
		p, cost  []float64
		eligible []bool
		thr      float64
		want     int
	}{
		{"cheapest that clears", []float64{0.7, 0.9, 0.95}, []float64{1, 2, 3}, nil, 0.85, 1},
		{"none clears: most likely", []float64{0.7, 0.8, 0.75}, []float64{1, 2, 3}, nil, 0.85, 1},
		{"equal price: the more likely", []float64{0.86, 0.9, 0.95}, []float64{2, 2, 3}, nil, 0.85, 1},
		{"equal P and price: the first", []float64{0.9, 0.9}, []float64{2, 2}, nil, 0.85, 0},
		{"ineligible skipped", []float64{0.9, 0.95}, []float64{1, 3}, []bool{false, true}, 0.85, 1},
		{"most likely among equals: the first", []float64{0.5, 0.6, 0.6}, []float64{1, 1, 1}, nil, 0.9, 1},
		{"nothing eligible", []float64{0.9}, []float64{1}, []bool{false}, 0.5, -1},
	}
	for _, tt := range tests {
		if got := router.Pick(tt.p, tt.cost, tt.eligible, tt.thr); got != tt.want {
			t.Errorf("%s: Pick(%v, %v, %v, %v) = %d, want %d", tt.name, tt.p, tt.cost, tt.eligible, tt.thr, got, tt.want)
		}
	}
}

// TestPickIsDecide: on a trained policy without exploration, Decide's
// greedy model on every workload request the classifier decides is Pick
// on the decision's own candidates at the tier's threshold. The threshold
// search and the rule audit replay Pick, so this is what makes them
// optimise and judge the rule serving runs.
func TestPickIsDecide(t *testing.T) {
	p := *trainedPolicy(t)
	p.Epsilon, p.Version, p.Checksum = 0, "", ""
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	items, err := datasets.Generate(5, 3000)
	if err != nil {
		t.Fatal(err)
	}
	thr := router.DefaultThresholds()
	for k, v := range p.Thresholds {
		thr[k] = v
	}
	n := 0
	for _, it := range items {
		d := router.Decide(it.Request, &p, nil)
		if d.Model == "" || d.Rule != "" {
			continue
		}
		var ps, cost []float64
		var elig []bool
		for _, c := range d.Candidates {
			ps, cost, elig = append(ps, c.P), append(cost, c.CostUSD), append(elig, c.Eligible)
		}
		tier := it.Request.Tier
		if tier == "" {
			tier = router.TierStandard
		}
		i := router.Pick(ps, cost, elig, thr[tier])
		if i < 0 || d.Candidates[i].Model != d.Greedy {
			t.Fatalf("request %s: Decide chose %s, Pick on its candidates %d (%v)", it.Request.ID, d.Greedy, i, d.Candidates)
		}
		n++
	}
	if n < 1000 {
		t.Fatalf("only %d classifier decisions checked", n)
	}
}

// TestChooseThresholds: a cheap model at P 0.8 and a dear one at 0.95. At
// thresholds up to 0.80 the cheap one is chosen (success 0.8, cost 1),
// above it the dear one (0.95, cost 3). Standard tolerates 0.01 below the
// best, so it needs 0.95: the first grid point above 0.80, 0.81. Draft
// tolerating 0.2 takes the cheapest point, 0.50. The grid is 0.50..1.00,
// 51 points.
func TestChooseThresholds(t *testing.T) {
	row := func(tier router.Tier) router.Choice {
		return router.Choice{Tier: tier, W: 1, P: []float64{0.8, 0.95}, Cost: []float64{1, 3}, Eligible: []bool{true, true}}
	}
	rows := []router.Choice{row(router.TierStandard), row(router.TierDraft)}
	thr, curves := router.ChooseThresholds(rows, map[router.Tier]float64{router.TierPremium: 0.9},
		router.ThresholdOptions{Slack: map[router.Tier]float64{router.TierDraft: 0.2, router.TierStandard: 0.01}})
	if thr[router.TierStandard] != 0.81 {
		t.Errorf("standard threshold = %v, want 0.81", thr[router.TierStandard])
	}
	if thr[router.TierDraft] != 0.5 {
		t.Errorf("draft threshold = %v, want 0.5", thr[router.TierDraft])
	}
	if thr[router.TierPremium] != 0.9 {
		t.Errorf("premium threshold (no rows) = %v, want the fallback 0.9", thr[router.TierPremium])
	}
	if n := len(curves[router.TierStandard]); n != 51 {
		t.Errorf("curve has %d points, want 51", n)
	}
	f := router.Frontier(curves[router.TierStandard])
	if len(f) != 2 || f[0].CostUSD != 1 || f[1].CostUSD != 3 || !f[1].Chosen {
		t.Errorf("Frontier = %+v, want the two distinct points, the dearer chosen", f)
	}
}

// TestChooseThresholdsWeighted: weights are inverse propensities; a request
// of weight 3 counts as three. Cheap model: P 0.9 on request a (w 1), 0.5
// on b (w 3); dear model 0.95 on both. At 0.85 a gets cheap, b dear:
// success (0.9 + 3*0.95)/4 = 0.9375, cost (1 + 3*3)/4 = 2.5.
func TestChooseThresholdsWeighted(t *testing.T) {
	rows := []router.Choice{
		{Tier: router.TierStandard, W: 1, P: []float64{0.9, 0.95}, Cost: []float64{1, 3}},
		{Tier: router.TierStandard, W: 3, P: []float64{0.5, 0.95}, Cost: []float64{1, 3}},
	}
	_, curves := router.ChooseThresholds(rows, nil, router.ThresholdOptions{Grid: []float64{0.85}})
	pt := curves[router.TierStandard][0]
	if math.Abs(pt.Success-0.9375) > 1e-12 || math.Abs(pt.CostUSD-2.5) > 1e-12 {
		t.Errorf("point at 0.85 = %+v, want success 0.9375 cost 2.5", pt)
	}
}
