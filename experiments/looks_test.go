package experiments_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/experiments"
)

func report(p, lo, hi float64) experiments.Report {
	c := experiments.Comparison{Delta: 0.01, AlwaysValidPValue: ptr(p), AlwaysValidCILow: ptr(lo), AlwaysValidCIHigh: ptr(hi), AlwaysValidSignif: p < 0.05}
	return experiments.Report{Alpha: 0.05, Treatments: []experiments.TreatmentResult{{
		Arm: "t", Metric: "success_rate", Comparison: c, Metrics: map[string]experiments.Comparison{"success_rate": c},
	}}}
}

// A sequence of looks: the p-value reported at each look is the running
// minimum of the per-look values, the interval the running intersection,
// and significance sticks once reached.
func TestApplyLooksKeepsTheRunningMinimum(t *testing.T) {
	looks := []struct{ p, lo, hi float64 }{{0.40, -0.05, 0.07}, {0.03, 0.001, 0.04}, {0.20, -0.01, 0.05}, {0.60, -0.02, 0.06}}
	want := []experiments.Look{
		{PValue: 0.40, CILow: -0.05, CIHigh: 0.07},
		{PValue: 0.03, CILow: 0.001, CIHigh: 0.04},
		{PValue: 0.03, CILow: 0.001, CIHigh: 0.04},
		{PValue: 0.03, CILow: 0.001, CIHigh: 0.04},
	}
	var prior map[experiments.LookKey]experiments.Look
	for i, l := range looks {
		r := report(l.p, l.lo, l.hi)
		recorded := r.Looks() // what this look records: its own values
		r.ApplyLooks(prior)
		got := r.Looks()[experiments.LookKey{Arm: "t", Metric: "success_rate"}]
		if diff := cmp.Diff(want[i], got); diff != "" {
			t.Errorf("look %d (-want +got):\n%s", i, diff)
		}
		if *r.Treatments[0].AlwaysValidPValue != want[i].PValue || r.Treatments[0].AlwaysValidSignif != (want[i].PValue < 0.05) {
			t.Errorf("look %d: primary comparison p %v signif %v, want the running %v", i, *r.Treatments[0].AlwaysValidPValue, r.Treatments[0].AlwaysValidSignif, want[i].PValue)
		}
		if prior == nil {
			prior = recorded
			continue
		}
		for k, v := range recorded {
			if p, ok := prior[k]; ok {
				v = p.Combine(v)
			}
			prior[k] = v
		}
	}
}

// An empty intersection keeps the current look's interval.
func TestApplyLooksEmptyIntersection(t *testing.T) {
	r := report(0.5, 0.02, 0.08)
	r.ApplyLooks(map[experiments.LookKey]experiments.Look{{Arm: "t", Metric: "success_rate"}: {PValue: 0.9, CILow: -0.1, CIHigh: 0.01}})
	got := r.Looks()[experiments.LookKey{Arm: "t", Metric: "success_rate"}]
	if want := (experiments.Look{PValue: 0.5, CILow: 0.02, CIHigh: 0.08}); got != want {
		t.Errorf("ApplyLooks with a disjoint prior interval = %+v, want %+v", got, want)
	}
}
