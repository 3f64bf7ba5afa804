package experiments_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/routelab/routelab/experiments"
)

// A shadow experiment samples requests at its share, per feature group,
// and marks them shadow with the candidate's overrides.
func TestShadowAssignment(t *testing.T) {
	s := experiments.Spec{
		ID: "shadow-1", Name: "s", Owner: "t", Unit: experiments.UnitUser, PrimaryMetric: "success_rate", Status: experiments.StatusRunning,
		Kind: experiments.KindShadow, Shadow: &experiments.Shadow{Share: 0.3, ByGroup: map[string]float64{"text": 1}},
		Arms: []experiments.Arm{{Name: "live", Weight: 1}, {Name: "cand", Weight: 1, Overrides: experiments.Overrides{Model: "sim-typo"}}},
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := experiments.Allocate(&s, nil); err != nil {
		t.Fatal(err)
	}
	a := experiments.NewAssigner([]experiments.Spec{s})
	tests := []struct {
		give experiments.Subject
		want float64
	}{
		{experiments.Subject{Mode: "generate", Tier: "standard", User: "u1"}, 0.3},
		{experiments.Subject{Mode: "generate", Tier: "standard", User: "u1", TextHeavy: true}, 1},
	}
	for _, tt := range tests {
		const n = 10000
		var in float64
		for i := range n {
			tt.give.RequestID = fmt.Sprintf("r%d", i)
			got := a.Assign(nil, tt.give)
			if len(got) == 0 {
				continue
			}
			g := got[0]
			if !g.Shadow || g.Arm != "cand" || g.Overrides == nil || g.Overrides.Model != "sim-typo" || g.Propensity != tt.want {
				t.Fatalf("Assign = %+v, want a shadow of arm cand at propensity %v", g, tt.want)
			}
			in++
		}
		// one user: the draw is per request, not per unit
		if got := in / n; math.Abs(got-tt.want) > 0.02 {
			t.Errorf("text %v: mirrored %.3f of requests, want %.2f", tt.give.TextHeavy, got, tt.want)
		}
	}
	bad := s
	bad.Arms = []experiments.Arm{{Name: "live", Weight: 1, Overrides: experiments.Overrides{Model: "x"}}, {Name: "cand", Weight: 1, Overrides: experiments.Overrides{Model: "y"}}}
	if err := bad.Validate(); err == nil {
		t.Error("Validate(a live arm with overrides) = nil, want an error")
	}
}
