package experiments_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/routelab/routelab/experiments"
)

// simArm builds an arm's aggregates from simulated units: each unit makes
// 1-5 requests that succeed with rate p and error with rate e.
func simArm(rng *rand.Rand, name string, units int, p, e float64) experiments.ArmData {
	d := experiments.ArmData{Arm: name, Ratios: map[string]experiments.RatioMoments{}, Latency: map[float64]float64{}}
	succ, errs, cost := experiments.RatioMoments{}, experiments.RatioMoments{}, experiments.RatioMoments{}
	for range units {
		r := float64(1 + rng.IntN(5))
		var s, er float64
		for range int(r) {
			if rng.Float64() < e {
				er++
			} else if rng.Float64() < p {
				s++
			}
		}
		succ.Add(s, r)
		errs.Add(er, r)
		cost.Add(0.02*(r-er), r-er)
		d.Units++
		d.Requests += r
		d.CUPED.Add(s, s+rng.NormFloat64())
	}
	d.Ratios["success_rate"], d.Ratios["error_rate"], d.Ratios["cost_per_image"] = succ, errs, cost
	for _, l := range experiments.LatencyLevels() {
		d.Latency[l] = 3000 * math.Exp(0.5*1.6449*(l-0.5)*2)
	}
	return d
}

func TestAnalyze(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := MustSpec(t, "a", "l", 1, 1, 1, 1)
	s.Guardrails = []experiments.Guardrail{{Metric: "error_rate", MaxIncrease: ptr(0.02), MinUnits: 100}}
	data := []experiments.ArmData{simArm(rng, "arm0", 5000, 0.6, 0.01), simArm(rng, "arm1", 5000, 0.65, 0.01)}
	r := experiments.Analyze(s, data, 0.05)
	if len(r.Arms) != 2 || len(r.Treatments) != 1 || r.Units != 10000 || r.SRM {
		t.Fatalf("report = %+v", r)
	}
	tr := r.Treatments[0]
	// true lift 0.05 × (1 − 0.01)
	if tr.Metric != "success_rate" || tr.CILow == nil || *tr.CILow > 0.0495 || *tr.CIHigh < 0.0495 || *tr.PValue > 1e-6 || tr.AlwaysValidPValue == nil || *tr.AlwaysValidPValue > 0.05 {
		t.Errorf("treatment = %+v", tr.Comparison)
	}
	if *tr.AlwaysValidCILow > *tr.CILow || *tr.AlwaysValidCIHigh < *tr.CIHigh {
		t.Errorf("always-valid interval [%v, %v] narrower than fixed [%v, %v]", *tr.AlwaysValidCILow, *tr.AlwaysValidCIHigh, *tr.CILow, *tr.CIHigh)
	}
	if tr.CUPED == nil || tr.CUPED.VarianceReduction < 0.5 {
		t.Errorf("cuped = %+v", tr.CUPED)
	}
	for _, a := range r.Arms {
		m := a.Metrics["latency_p95_ms"]
		if m.CILow == nil || !(*m.CILow < m.Value && m.Value < *m.CIHigh) {
			t.Errorf("arm %s p95 = %+v", a.Arm, m)
		}
		if a.Value == nil || a.CILow == nil {
			t.Errorf("arm %s lacks primary value", a.Arm)
		}
	}
	if len(r.Guardrails) != 1 || r.Guardrails[0].Breached || !r.Guardrails[0].Ready {
		t.Errorf("guardrails = %+v", r.Guardrails)
	}

	// SRM: 10% fewer units in the treatment.
	data[1] = simArm(rng, "arm1", 4500, 0.65, 0.01)
	if r := experiments.Analyze(s, data, 0.05); !r.SRM || r.SRMPValue > 1e-6 {
		t.Errorf("SRM not flagged: p %v", r.SRMPValue)
	}
}

func ptr(f float64) *float64 { return &f }

func TestJudge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := MustSpec(t, "c", "l", 1, 0.05, 1, 1)
	s.Guardrails = []experiments.Guardrail{{Metric: "error_rate", Max: ptr(0.1), MaxIncrease: ptr(0.05), MinUnits: 50}}
	s.Ramp = &experiments.Ramp{Steps: []float64{0.05, 0.25, 1}, MinDuration: experiments.Duration(time.Minute), MinUnits: 100, StepStartedMS: 0}
	start := time.UnixMilli(0)
	healthy := []experiments.ArmData{simArm(rng, "arm0", 300, 0.6, 0.01), simArm(rng, "arm1", 300, 0.6, 0.01)}
	failing := []experiments.ArmData{simArm(rng, "arm0", 300, 0.6, 0.01), simArm(rng, "arm1", 300, 0.6, 0.4)}
	tests := []struct {
		name string
		data []experiments.ArmData
		now  time.Time
		want experiments.Action
	}{
		{"too early", healthy, start.Add(30 * time.Second), experiments.ActionHold},
		{"advance", healthy, start.Add(2 * time.Minute), experiments.ActionAdvance},
		{"few units", []experiments.ArmData{simArm(rng, "arm0", 60, 0.6, 0.01), simArm(rng, "arm1", 60, 0.6, 0.01)}, start.Add(2 * time.Minute), experiments.ActionHold},
		{"breach early", failing, start.Add(10 * time.Second), experiments.ActionRollback},
	}
	for _, tt := range tests {
		v := experiments.Judge(s, experiments.Analyze(s, tt.data, 0.05), tt.now)
		if v.Action != tt.want {
			t.Errorf("%s: Judge = %+v, want %s", tt.name, v, tt.want)
		}
	}
}

func TestGuardrailPercentileNeedsSeparatedIntervals(t *testing.T) {
	s := MustSpec(t, "p", "l", 1, 1, 1, 1)
	s.Guardrails = []experiments.Guardrail{{Metric: "latency_p95_ms", MaxIncrease: ptr(100)}}
	mk := func(name string, n, shift float64) experiments.ArmData {
		d := experiments.ArmData{Arm: name, Units: n, Requests: n, Latency: map[float64]float64{}}
		for _, l := range experiments.LatencyLevels() {
			d.Latency[l] = 1000*l + shift // quantiles rise 10 ms per level point
		}
		return d
	}
	// p95 differs by 150 (> 100) but with 100 requests the intervals overlap
	few := experiments.Analyze(s, []experiments.ArmData{mk("arm0", 100, 0), mk("arm1", 100, 150)}, 0.05)
	if few.Guardrails[0].Breached {
		t.Errorf("breached on overlapping intervals: %+v", few.Guardrails[0])
	}
	// a shift of 500 with 100k requests: intervals apart by more than 100
	many := experiments.Analyze(s, []experiments.ArmData{mk("arm0", 1e5, 0), mk("arm1", 1e5, 500)}, 0.05)
	if !many.Guardrails[0].Breached {
		t.Errorf("not breached: %+v", many.Guardrails[0])
	}
}
