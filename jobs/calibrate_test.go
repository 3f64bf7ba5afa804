package jobs_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/routelab/routelab/jobs"
)

// TestEvaluateHandComputed: two fine bins with constant P.
//
//	bin p=0.60: W=100, WY=50 -> coarse bin 6, gap |50-60| = 10
//	bin p=0.85: W=100, WY=90 -> coarse bin 8, gap |90-85| = 5
//	ECE = 15/200 = 0.075
//	Brier = [(50 - 2*0.6*50 + 0.36*100) + (90 - 2*0.85*90 + 0.7225*100)] / 200
//	      = (26 + 9.25) / 200 = 0.17625
func TestEvaluateHandComputed(t *testing.T) {
	bins := []jobs.CalBin{
		{N: 100, W: 100, WY: 50, WP: 60, WPP: 36, WYP: 30},
		{N: 100, W: 100, WY: 90, WP: 85, WPP: 72.25, WYP: 76.5},
	}
	c := jobs.Evaluate(bins, nil)
	if math.Abs(c.ECE-0.075) > 1e-12 || math.Abs(c.Brier-0.17625) > 1e-12 {
		t.Errorf("Evaluate = %+v, want ECE 0.075 Brier 0.17625", c)
	}
	// mapping every P to the observed rate makes the ECE zero
	perfect := func(p float64) float64 {
		if p < 0.7 {
			return 0.5
		}
		return 0.9
	}
	if c := jobs.Evaluate(bins, perfect); c.ECE > 1e-12 {
		t.Errorf("Evaluate(perfect map) ECE = %v, want 0", c.ECE)
	}
}

// TestFitMapRecovers: a model whose real success rate is half its logged P
// gets a map that halves P, and the held-out ECE falls from over 0.3 to
// under 0.04. The held-out fifth (about 4,000 rows in 10 bins) carries
// sampling noise: over seeds 1-20 of this data the fitted map's held-out
// ECE ranges 0.003-0.030 (mean 0.018) and the true map's, P/2, 0.003-0.021;
// seed 1 is the 0.030.
func TestFitMapRecovers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []jobs.Row
	for i := range 20000 {
		p := 0.5 + 0.5*rng.Float64()
		y := 0.0
		if rng.Float64() < p/2 {
			y = 1
		}
		rows = append(rows, jobs.Row{ID: "r" + itoa(i), Model: "m", Propensity: 0.5, Y: y, Cands: []jobs.Cand{{Model: "m", P: p, Cost: 1, Eligible: true}}})
	}
	bins := jobs.BinsFromRows(rows)
	var fit, hold []jobs.CalBin
	for _, b := range bins {
		if b.Holdout {
			hold = append(hold, b)
		} else {
			fit = append(fit, b)
		}
	}
	m := jobs.FitMap(fit, 20)
	for _, p := range []float64{0.6, 0.8, 0.95} {
		if got := m.Apply(p); math.Abs(got-p/2) > 0.05 {
			t.Errorf("map(%v) = %.3f, want about %.3f", p, got, p/2)
		}
	}
	before, after := jobs.Evaluate(hold, nil), jobs.Evaluate(hold, m.Apply)
	if !(after.ECE < 0.04 && before.ECE > 0.3) {
		t.Errorf("held-out ECE before %.4f after %.4f, want > 0.3 then < 0.04", before.ECE, after.ECE)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for i > 0 {
		b = append([]byte{digits[i%10]}, b...)
		i /= 10
	}
	return string(b)
}

func TestLabelsValidate(t *testing.T) {
	bad := jobs.DefaultLabels()
	bad.FailSignals = append(bad.FailSignals, "x'); DROP TABLE decisions; --")
	if err := bad.Validate(); err == nil {
		t.Errorf("Validate(%q) = nil, want an error", bad.FailSignals)
	}
	if err := jobs.DefaultLabels().Validate(); err != nil {
		t.Errorf("Validate(default) = %v", err)
	}
}
