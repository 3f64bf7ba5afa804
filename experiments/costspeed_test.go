package experiments_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/routelab/routelab/experiments"
)

// TestCostSpeed: per-unit sums give each arm's successes per dollar and
// successes within budget with intervals, and a treatment's differences;
// a cheaper arm with the same success rate wins per dollar, a slower one
// loses within budget; a report with an empty arm still marshals.
func TestCostSpeed(t *testing.T) {
	s := experiments.Spec{Control: "control", Arms: []experiments.Arm{{Name: "control"}, {Name: "cheap"}, {Name: "empty"}}}
	var ctl, cheap experiments.CostSpeedArm
	ctl.Arm, cheap.Arm = "control", "cheap"
	for u := range 400 {
		succ := float64(u % 2) // half the units succeed once, in both arms
		ctl.SuccessPerDollar.Add(succ, 0.10)
		cheap.SuccessPerDollar.Add(succ, 0.02)
		ctl.InBudget.Add(succ, 1)
		slow := 0.0
		if u%4 == 1 { // half of cheap's successes come too late
			slow = succ
		}
		cheap.InBudget.Add(slow, 1)
	}
	res := experiments.AnalyzeCostSpeed(s, []experiments.CostSpeedArm{cheap, ctl, {Arm: "empty"}}, 0.05)
	if len(res) != 3 || res[0].Arm != "control" || !res[0].Control || res[0].DeltaPerDollar != nil {
		t.Fatalf("results = %+v, want control first without deltas", res)
	}
	c, ch := res[0], res[1]
	if math.Abs(c.SuccessPerDollar.Value-5) > 1e-9 || math.Abs(ch.SuccessPerDollar.Value-25) > 1e-9 {
		t.Errorf("success per dollar: control %v, cheap %v; want 5 and 25", c.SuccessPerDollar.Value, ch.SuccessPerDollar.Value)
	}
	if math.Abs(c.SuccessInBudget.Value-0.5) > 1e-9 || math.Abs(ch.SuccessInBudget.Value-0.25) > 1e-9 {
		t.Errorf("success in budget: control %v, cheap %v; want 0.5 and 0.25", c.SuccessInBudget.Value, ch.SuccessInBudget.Value)
	}
	if c.SuccessInBudget.CILow == nil || !(*c.SuccessInBudget.CILow < 0.5 && *c.SuccessInBudget.CIHigh > 0.5) {
		t.Errorf("control's in-budget interval %+v does not cover 0.5", c.SuccessInBudget)
	}
	if ch.DeltaPerDollar == nil || ch.DeltaPerDollar.CILow <= 0 || ch.DeltaInBudget == nil || ch.DeltaInBudget.CIHigh >= 0 {
		t.Errorf("cheap vs control: per dollar %+v (want > 0), in budget %+v (want < 0)", ch.DeltaPerDollar, ch.DeltaInBudget)
	}
	if e := res[2]; e.SuccessPerDollar != nil || e.SuccessInBudget != nil || e.DeltaPerDollar != nil {
		t.Errorf("empty arm = %+v, want no figures", e)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("marshal: %v", err)
	}
}

// TestSpecLatencyBudgets: a spec's budgets replace the defaults tier by
// tier; the tiers it leaves out keep theirs.
func TestSpecLatencyBudgets(t *testing.T) {
	s, err := experiments.ParseSpec([]byte(`{"name":"n","owner":"o","primary_metric":"success_rate","arms":[{"name":"a","weight":1},{"name":"b","weight":1}],"latency_budgets_ms":{"draft":4000,"premium":90000}}`))
	if err != nil {
		t.Fatal(err)
	}
	got, want := s.LatencyBudgets(), experiments.LatencyBudgets{Draft: 4 * time.Second, Standard: 30 * time.Second, Premium: 90 * time.Second}
	if got != want {
		t.Errorf("LatencyBudgets() = %v, want %v", got, want)
	}
	if d := (experiments.Spec{}).LatencyBudgets(); d != experiments.DefaultLatencyBudgets() {
		t.Errorf("no budgets in the spec: %v, want the defaults", d)
	}
}
