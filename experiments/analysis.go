package experiments

import (
	"fmt"
	"math"
	"sort"
)

// ArmData are one arm's aggregates over its units, as the warehouse computes
// them (experiments/clickhouse): per-unit sums make every per-request metric
// a ratio metric analysed with the delta method, because units, not
// requests, were randomized.
type ArmData struct {
	Arm      string
	Units    float64
	Requests float64
	// Ratios holds, per ratio metric, the moments of (numerator, denominator)
	// over units: counts per request (denominator requests), cost per image
	// (denominator images), mean latency (denominator requests).
	Ratios map[string]RatioMoments
	// Latency quantiles over the arm's requests: level -> ms, on a grid
	// dense enough to interpolate order-statistic intervals (LatencyLevels).
	Latency map[float64]float64
	// CUPED holds the primary metric's numerator per unit in the experiment
	// (Y) and in the pre-period (X); N is 0 when there is no pre-period.
	CUPED CovMoments
}

// LatencyLevels are the quantile levels the warehouse computes.
func LatencyLevels() []float64 {
	var out []float64
	for l := 0.30; l < 0.7001; l += 0.01 {
		out = append(out, math.Round(l*1000)/1000)
	}
	for l := 0.85; l < 0.9951; l += 0.005 {
		out = append(out, math.Round(l*1000)/1000)
	}
	return out
}

// RatioMetrics are the metrics analysed as ratios of per-unit sums.
var RatioMetrics = []string{
	"success_rate", "qa_pass_rate", "qa_fail_rate", "error_rate", "escalation_rate",
	"thumbs_up_rate", "thumbs_down_rate", "cost_per_image", "latency_ms",
}

// Value is a metric's value in one arm with its confidence interval.
type Value struct {
	Value  float64  `json:"value"`
	CILow  *float64 `json:"ci_low"`
	CIHigh *float64 `json:"ci_high"`
}

// ArmResult is one arm in a report.
type ArmResult struct {
	Arm           string           `json:"arm"`
	Control       bool             `json:"control"`
	Units         float64          `json:"units"`
	Requests      float64          `json:"requests"`
	Share         float64          `json:"share"`
	ExpectedShare float64          `json:"expected_share"`
	Value         *float64         `json:"value"` // primary metric
	CILow         *float64         `json:"ci_low"`
	CIHigh        *float64         `json:"ci_high"`
	Metrics       map[string]Value `json:"metrics"`
}

// Comparison is a treatment's difference from control on one metric.
type Comparison struct {
	Delta             float64  `json:"delta"`
	Relative          *float64 `json:"relative"` // delta / control value
	CILow             *float64 `json:"ci_low"`
	CIHigh            *float64 `json:"ci_high"`
	PValue            *float64 `json:"p_value"`
	AdjustedPValue    *float64 `json:"adjusted_p_value"` // Holm across the metrics of this treatment
	AlwaysValidPValue *float64 `json:"always_valid_p_value"`
	AlwaysValidCILow  *float64 `json:"always_valid_ci_low"`
	AlwaysValidCIHigh *float64 `json:"always_valid_ci_high"`
	Significant       bool     `json:"significant"` // adjusted p < alpha
	AlwaysValidSignif bool     `json:"always_valid_significant"`
}

// TreatmentResult compares one treatment arm with control: the top-level
// fields are the primary metric; Metrics has every metric.
type TreatmentResult struct {
	Arm    string `json:"arm"`
	Metric string `json:"metric"`
	Comparison
	Metrics map[string]Comparison `json:"metrics"`
	CUPED   *CUPEDResult          `json:"cuped,omitempty"`
}

// GuardrailResult is one guardrail checked on one treatment arm.
type GuardrailResult struct {
	Arm      string   `json:"arm"`
	Metric   string   `json:"metric"`
	Value    float64  `json:"value"`
	Control  float64  `json:"control"`
	Max      *float64 `json:"max,omitempty"`
	MaxInc   *float64 `json:"max_increase,omitempty"`
	Units    float64  `json:"units"`
	Breached bool     `json:"breached"`
	Ready    bool     `json:"ready"` // enough units to judge
	Reason   string   `json:"reason,omitempty"`
}

// Report is the analysis of one experiment phase.
type Report struct {
	Experiment    string            `json:"experiment"`
	Name          string            `json:"name"`
	Status        Status            `json:"status"`
	Phase         int               `json:"phase"`
	PhaseStarted  int64             `json:"phase_started_ms"`
	Traffic       float64           `json:"traffic"`
	PrimaryMetric string            `json:"primary_metric"`
	Alpha         float64           `json:"alpha"`
	Units         float64           `json:"units"`
	Requests      float64           `json:"requests"`
	SRMChi2       float64           `json:"srm_chi2"`
	SRMPValue     float64           `json:"srm_p_value"`
	SRM           bool              `json:"srm"` // p < SRMAlpha: do not trust the deltas
	MinSample     int               `json:"min_sample"`
	SampleReached bool              `json:"sample_reached"`
	Arms          []ArmResult       `json:"arms"`
	Treatments    []TreatmentResult `json:"treatments"`
	Guardrails    []GuardrailResult `json:"guardrails,omitempty"`
	// CostSpeed are the cost- and speed-aware figures per arm (control
	// first), when the reader computed them.
	CostSpeed []CostSpeedResult `json:"cost_speed,omitempty"`
	// LatencyBudgets says which tier budgets CostSpeed was measured against.
	LatencyBudgets string `json:"latency_budgets,omitempty"`
	QueryMS        int64  `json:"query_ms,omitempty"`
}

func f(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// Analyze computes the report of s from per-arm aggregates. Arms of the spec
// missing from data count as empty.
func Analyze(s Spec, data []ArmData, alpha float64) Report {
	byArm := map[string]ArmData{}
	for _, d := range data {
		byArm[d.Arm] = d
	}
	r := Report{
		Experiment: s.ID, Name: s.Name, Status: s.Status, Phase: s.Phase, PhaseStarted: s.PhaseStarted,
		Traffic: s.Traffic, PrimaryMetric: s.PrimaryMetric, Alpha: alpha, MinSample: s.MinSample,
	}
	var total float64
	for _, a := range s.Arms {
		total += a.Weight
	}
	obs := make([]float64, len(s.Arms))
	w := make([]float64, len(s.Arms))
	r.SampleReached = true
	for i, a := range s.Arms {
		d := byArm[a.Name]
		obs[i], w[i] = d.Units, a.Weight
		r.Units += d.Units
		r.Requests += d.Requests
		if d.Units < float64(s.MinSample) {
			r.SampleReached = false
		}
	}
	r.SRMChi2, r.SRMPValue = SRM(obs, w)
	r.SRM = r.SRMPValue < SRMAlpha
	for i, a := range s.Arms {
		d := byArm[a.Name]
		ar := ArmResult{Arm: a.Name, Control: a.Name == s.Control, Units: d.Units, Requests: d.Requests,
			ExpectedShare: a.Weight / total, Metrics: armMetrics(d, alpha)}
		if r.Units > 0 {
			ar.Share = obs[i] / r.Units
		}
		if v, ok := ar.Metrics[s.PrimaryMetric]; ok {
			ar.Value, ar.CILow, ar.CIHigh = f(v.Value), v.CILow, v.CIHigh
		}
		r.Arms = append(r.Arms, ar)
	}
	ctl := byArm[s.Control]
	for _, a := range s.Arms {
		if a.Name == s.Control {
			continue
		}
		r.Treatments = append(r.Treatments, compare(s, ctl, byArm[a.Name], alpha))
	}
	r.Guardrails = CheckGuardrails(s, r)
	return r
}

func armMetrics(d ArmData, alpha float64) map[string]Value {
	z := zQuantile(1 - alpha/2)
	out := map[string]Value{}
	for _, m := range RatioMetrics {
		rm, ok := d.Ratios[m]
		if !ok || rm.SumY == 0 {
			continue
		}
		v := rm.Ratio()
		se := math.Sqrt(rm.RatioVar())
		out[m] = Value{Value: v, CILow: f(v - z*se), CIHigh: f(v + z*se)}
	}
	n := d.Requests
	for name, p := range map[string]float64{"latency_p50_ms": 0.5, "latency_p95_ms": 0.95} {
		v, ok := d.Latency[p]
		if !ok || n == 0 {
			continue
		}
		// Distribution-free interval from order statistics: ranks
		// n·p ± z·sqrt(n·p(1−p)), read off the quantile grid. Requests
		// within a unit are treated as independent here (approximate).
		h := z * math.Sqrt(p*(1-p)/n)
		out[name] = Value{Value: v, CILow: f(interp(d.Latency, p-h)), CIHigh: f(interp(d.Latency, p+h))}
	}
	return out
}

// interp reads the quantile at level l from the grid by linear
// interpolation, clamping to the grid's ends.
func interp(q map[float64]float64, l float64) float64 {
	levels := make([]float64, 0, len(q))
	for k := range q {
		levels = append(levels, k)
	}
	sort.Float64s(levels)
	if len(levels) == 0 {
		return math.NaN()
	}
	if l <= levels[0] {
		return q[levels[0]]
	}
	for i := 1; i < len(levels); i++ {
		if l <= levels[i] {
			a, b := levels[i-1], levels[i]
			if b-a > 0.05 { // not on a dense part of the grid
				return q[b]
			}
			return q[a] + (q[b]-q[a])*(l-a)/(b-a)
		}
	}
	return q[levels[len(levels)-1]]
}

func compare(s Spec, ctl, trt ArmData, alpha float64) TreatmentResult {
	tr := TreatmentResult{Arm: trt.Arm, Metric: s.PrimaryMetric, Metrics: map[string]Comparison{}}
	var names []string
	var ps []float64
	for _, m := range RatioMetrics {
		a, okA := ctl.Ratios[m]
		b, okB := trt.Ratios[m]
		if !okA || !okB || a.SumY == 0 || b.SumY == 0 || a.N < 2 || b.N < 2 {
			continue
		}
		e := RatioDelta(a, b, alpha)
		c := Comparison{Delta: e.Delta, CILow: f(e.CILow), CIHigh: f(e.CIHigh), PValue: f(e.PValue)}
		if base := a.Ratio(); base != 0 {
			c.Relative = f(e.Delta / base)
		}
		if av, hw := MSPRT(e.Delta, e.SE*e.SE, Tau2(a.Ratio()), alpha); !math.IsNaN(av) {
			c.AlwaysValidPValue, c.AlwaysValidCILow, c.AlwaysValidCIHigh = f(av), f(e.Delta-hw), f(e.Delta+hw)
			c.AlwaysValidSignif = av < alpha
		}
		tr.Metrics[m] = c
		if c.PValue != nil {
			names = append(names, m)
			ps = append(ps, *c.PValue)
		}
	}
	for name, p := range map[string]float64{"latency_p50_ms": 0.5, "latency_p95_ms": 0.95} {
		va, okA := ctl.Latency[p]
		vb, okB := trt.Latency[p]
		if okA && okB {
			tr.Metrics[name] = Comparison{Delta: vb - va, Relative: f((vb - va) / va)}
		}
	}
	for i, adj := range Holm(ps) {
		c := tr.Metrics[names[i]]
		c.AdjustedPValue = f(adj)
		c.Significant = adj < alpha
		tr.Metrics[names[i]] = c
	}
	tr.Comparison = tr.Metrics[s.PrimaryMetric]
	if ctl.CUPED.N >= 2 && trt.CUPED.N >= 2 {
		c := CUPED(ctl.CUPED, trt.CUPED, alpha)
		tr.CUPED = &c
	}
	return tr
}

// CheckGuardrails evaluates every guardrail on every treatment arm of a
// report. To keep noise from rolling a canary back, a limit counts as
// breached only when the data exclude staying within it: the lower end of
// the arm's interval is above Max, or the lower end of the difference's
// interval is above MaxIncrease (for latency percentiles, which have no
// interval for the difference, the treatment's interval low minus the
// control's interval high).
func CheckGuardrails(s Spec, r Report) []GuardrailResult {
	var ctl *ArmResult
	for i := range r.Arms {
		if r.Arms[i].Control {
			ctl = &r.Arms[i]
		}
	}
	if ctl == nil {
		return nil
	}
	cmp := map[string]map[string]Comparison{}
	for _, t := range r.Treatments {
		cmp[t.Arm] = t.Metrics
	}
	var out []GuardrailResult
	for _, a := range r.Arms {
		if a.Control {
			continue
		}
		for _, g := range s.Guardrails {
			v, okT := a.Metrics[g.Metric]
			c, okC := ctl.Metrics[g.Metric]
			gr := GuardrailResult{Arm: a.Arm, Metric: g.Metric, Value: v.Value, Control: c.Value, Max: g.Max, MaxInc: g.MaxIncrease, Units: a.Units}
			gr.Ready = okT && a.Units >= float64(g.MinUnits)
			if !gr.Ready {
				out = append(out, gr)
				continue
			}
			low := v.Value
			if v.CILow != nil {
				low = *v.CILow
			}
			if g.Max != nil && low > *g.Max {
				gr.Breached, gr.Reason = true, fmtReason("%s %.4g in arm %s is above max %.4g (interval low %.4g)", g.Metric, v.Value, a.Arm, *g.Max, low)
			}
			if d, ok := cmp[a.Arm][g.Metric]; ok && g.MaxIncrease != nil && okC && !gr.Breached {
				dlow := d.Delta
				switch {
				case d.CILow != nil:
					dlow = *d.CILow
				case v.CILow != nil && c.CIHigh != nil:
					// no interval for the difference (percentiles): the
					// arms' own intervals must be apart by more than the limit
					dlow = *v.CILow - *c.CIHigh
				}
				if dlow > *g.MaxIncrease {
					gr.Breached, gr.Reason = true, fmtReason("%s in arm %s is %.4g over control (%.4g vs %.4g, interval low %.4g), above max_increase %.4g", g.Metric, a.Arm, d.Delta, v.Value, c.Value, dlow, *g.MaxIncrease)
				}
			}
			out = append(out, gr)
		}
	}
	return out
}

func fmtReason(format string, args ...any) string { return fmt.Sprintf(format, args...) }
