package experiments_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/routelab/routelab/experiments"
)

// A 5% holdout of a layer takes 5% of its units, always on the baseline
// policy, and none of them enters the layer's other experiments.
func TestHoldoutAssignment(t *testing.T) {
	h := experiments.Spec{ID: "holdout-routing", Name: "h", Owner: "t", Layer: "routing", LayerShare: 0.05, Kind: experiments.KindHoldout,
		PrimaryMetric: "success_rate", Arms: []experiments.Arm{{Name: "baseline", Weight: 1, Overrides: experiments.Overrides{PolicyVersion: "rules-1"}}}}
	h.Normalize()
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := experiments.Allocate(&h, nil); err != nil {
		t.Fatal(err)
	}
	h.Status, h.CreatedMS = experiments.StatusRunning, 1
	e := MustSpec(t, "exp-routing", "routing", 0.95, 1, 1, 1)
	if err := experiments.Allocate(&e, []experiments.Spec{h}); err != nil {
		t.Fatal(err)
	}
	a := experiments.NewAssigner([]experiments.Spec{h, e})
	const n = 20000
	var held, inExp float64
	for i := range n {
		got := a.Assign(nil, experiments.Subject{User: fmt.Sprintf("u%d", i), Mode: "generate", Tier: "standard"})
		if len(got) != 1 {
			t.Fatalf("user u%d in %d experiments of the layer, want exactly 1", i, len(got))
		}
		switch got[0].Experiment {
		case h.ID:
			if got[0].Overrides == nil || got[0].Overrides.PolicyVersion != "rules-1" {
				t.Fatalf("holdout assignment %+v, want the baseline policy", got[0])
			}
			held++
		default:
			inExp++
		}
	}
	if math.Abs(held/n-0.05) > 0.008 {
		t.Errorf("held out %.4f of users, want 0.05", held/n)
	}
	bad := h
	bad.Arms = append(bad.Arms, experiments.Arm{Name: "other", Weight: 1})
	if err := bad.Validate(); err == nil {
		t.Error("Validate(a holdout with two arms) = nil, want an error")
	}
}
