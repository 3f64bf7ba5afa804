package experiments

import (
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// Cost- and speed-aware comparisons: a model that succeeds a little more
// often at three times the price, or only after the user has given up
// waiting, is not better. Per arm: successes per dollar spent, and the
// share of requests that succeeded within their latency budget (the
// request's own max latency, else its tier's), each with an interval from
// per-unit sums (units, not requests, were randomized).

// LatencyBudgets are the tiers' default latency budgets, for requests that
// set none of their own.
type LatencyBudgets struct {
	Draft, Standard, Premium time.Duration
}

// DefaultLatencyBudgets: a draft is wanted at once, a premium image may
// take a minute.
func DefaultLatencyBudgets() LatencyBudgets {
	return LatencyBudgets{Draft: 10 * time.Second, Standard: 30 * time.Second, Premium: 60 * time.Second}
}

// String reads "draft 10s, standard 30s, premium 1m0s".
func (b LatencyBudgets) String() string {
	return fmt.Sprintf("draft %s, standard %s, premium %s", b.Draft, b.Standard, b.Premium)
}

// LatencyBudgetsMS is a spec's per-tier latency budgets in milliseconds;
// a tier left out (0) keeps its default.
type LatencyBudgetsMS struct {
	Draft    int64 `json:"draft,omitempty"`
	Standard int64 `json:"standard,omitempty"`
	Premium  int64 `json:"premium,omitempty"`
}

// maxLatencyBudgetMS bounds a budget: past ten minutes no user is waiting.
const maxLatencyBudgetMS = 10 * 60 * 1000

func (b *LatencyBudgetsMS) validate() error {
	if b == nil {
		return nil
	}
	for _, t := range []struct {
		tier string
		ms   int64
	}{{"draft", b.Draft}, {"standard", b.Standard}, {"premium", b.Premium}} {
		if t.ms < 0 || t.ms > maxLatencyBudgetMS {
			return invalid("out_of_range", "latency_budgets_ms."+t.tier, "a latency budget is in milliseconds, from 1 to %d (0 or absent keeps the default)", maxLatencyBudgetMS)
		}
	}
	return nil
}

// LatencyBudgets are the budgets s is analysed with: its own where it sets
// them, else the defaults.
func (s Spec) LatencyBudgets() LatencyBudgets {
	b := DefaultLatencyBudgets()
	if o := s.LatencyBudgetsMS; o != nil {
		for _, t := range []struct {
			ms  int64
			dst *time.Duration
		}{{o.Draft, &b.Draft}, {o.Standard, &b.Standard}, {o.Premium, &b.Premium}} {
			if t.ms > 0 {
				*t.dst = time.Duration(t.ms) * time.Millisecond
			}
		}
	}
	return b
}

// CostSpeedArm is one arm's per-unit sums: successes over cost, and
// successes within budget over requests.
type CostSpeedArm struct {
	Arm              string
	SuccessPerDollar RatioMoments // X successes, Y cost in USD
	InBudget         RatioMoments // X successes within the latency budget, Y requests
}

// CostSpeedResult is one arm's cost- and speed-aware figures, and for a
// treatment its differences from control.
type CostSpeedResult struct {
	Arm              string    `json:"arm"`
	Control          bool      `json:"control"`
	SuccessPerDollar *Value    `json:"success_per_dollar"` // nil: nothing spent
	SuccessInBudget  *Value    `json:"success_in_latency_budget"`
	DeltaPerDollar   *Estimate `json:"delta_success_per_dollar,omitempty"`
	DeltaInBudget    *Estimate `json:"delta_success_in_latency_budget,omitempty"`
}

// AnalyzeCostSpeed computes the figures of every arm with (1-alpha)
// intervals, control first.
func AnalyzeCostSpeed(s Spec, arms []CostSpeedArm, alpha float64) []CostSpeedResult {
	var ctl *CostSpeedArm
	for i := range arms {
		if arms[i].Arm == s.Control {
			ctl = &arms[i]
		}
	}
	z := distuv.UnitNormal.Quantile(1 - alpha/2)
	var out []CostSpeedResult
	for _, a := range arms {
		r := CostSpeedResult{Arm: a.Arm, Control: a.Arm == s.Control,
			SuccessPerDollar: ratioValue(a.SuccessPerDollar, z), SuccessInBudget: ratioValue(a.InBudget, z)}
		if ctl != nil && !r.Control {
			r.DeltaPerDollar = finite(RatioDelta(ctl.SuccessPerDollar, a.SuccessPerDollar, alpha))
			r.DeltaInBudget = finite(RatioDelta(ctl.InBudget, a.InBudget, alpha))
		}
		if r.Control {
			out = append([]CostSpeedResult{r}, out...)
		} else {
			out = append(out, r)
		}
	}
	return out
}

// finite is e, or nil when it could not be estimated (NaN: too few units).
func finite(e Estimate) *Estimate {
	if math.IsNaN(e.Delta) || math.IsNaN(e.SE) {
		return nil
	}
	return &e
}

// ratioValue is a ratio metric's value with its delta-method interval;
// nil without a denominator, no interval below two units.
func ratioValue(m RatioMoments, z float64) *Value {
	if m.SumY == 0 {
		return nil
	}
	v := &Value{Value: m.Ratio()}
	if se := math.Sqrt(m.RatioVar()); m.N >= 2 && !math.IsNaN(se) {
		lo, hi := v.Value-z*se, v.Value+z*se
		v.CILow, v.CIHigh = &lo, &hi
	}
	return v
}

func valueText(v *Value, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, v.Value)
}

func intervalText(v *Value, format string) string {
	if v == nil || v.CILow == nil {
		return "-"
	}
	return fmt.Sprintf("["+format+", "+format+"]", *v.CILow, *v.CIHigh)
}

func deltaText(e *Estimate, format string) string {
	if e == nil {
		return "-"
	}
	return fmt.Sprintf(format+" [%.4g, %.4g]", e.Delta, e.CILow, e.CIHigh)
}
