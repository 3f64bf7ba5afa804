package experiments

import "math"

// LookKey names one always-valid statistic: a metric of a treatment arm.
type LookKey struct {
	Arm    string
	Metric string
}

// Look is the always-valid result of one metric at one look at the data
// (mSPRT, see MSPRT), or the running result over several looks.
type Look struct {
	PValue float64
	CILow  float64
	CIHigh float64
}

// Looks returns this report's always-valid results, one per treatment
// metric that has them: what a look records.
func (r Report) Looks() map[LookKey]Look {
	out := map[LookKey]Look{}
	for _, t := range r.Treatments {
		for m, c := range t.Metrics {
			if l, ok := lookOf(c); ok {
				out[LookKey{t.Arm, m}] = l
			}
		}
	}
	return out
}

// lookOf is c's always-valid result, when it has one.
func lookOf(c Comparison) (Look, bool) {
	if c.AlwaysValidPValue == nil || c.AlwaysValidCILow == nil || c.AlwaysValidCIHigh == nil {
		return Look{}, false
	}
	return Look{PValue: *c.AlwaysValidPValue, CILow: *c.AlwaysValidCILow, CIHigh: *c.AlwaysValidCIHigh}, true
}

// Combine folds another look into a running result: the smaller p-value
// and the intersection of the intervals.
func (l Look) Combine(o Look) Look {
	return Look{PValue: math.Min(l.PValue, o.PValue), CILow: math.Max(l.CILow, o.CILow), CIHigh: math.Min(l.CIHigh, o.CIHigh)}
}

// ApplyLooks makes the report's always-valid results running ones over the
// earlier looks at the same phase (prior: their running result per arm and
// metric, see Combine). The mSPRT p-value at one look is only valid as the
// running minimum over every look so far (Johari, Pekelis and Walsh 2017:
// p_n = min(p_{n-1}, 1/Λ_n)), and the always-valid interval is the running
// intersection. An intersection that comes out empty (possible when the
// mixing variance moved between looks) keeps this look's interval.
func (r *Report) ApplyLooks(prior map[LookKey]Look) {
	for i := range r.Treatments {
		t := &r.Treatments[i]
		for m, c := range t.Metrics {
			p, ok := prior[LookKey{t.Arm, m}]
			cur, has := lookOf(c)
			if !ok || !has {
				continue
			}
			run := cur.Combine(p)
			if run.CILow > run.CIHigh {
				run.CILow, run.CIHigh = cur.CILow, cur.CIHigh
			}
			c.AlwaysValidPValue, c.AlwaysValidCILow, c.AlwaysValidCIHigh = f(run.PValue), f(run.CILow), f(run.CIHigh)
			c.AlwaysValidSignif = run.PValue < r.Alpha
			t.Metrics[m] = c
			if m == t.Metric {
				t.Comparison = c
			}
		}
	}
}
