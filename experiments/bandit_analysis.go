package experiments

import (
	"fmt"
	"io"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// LoggedOutcome is one request of a bandit experiment as its events hold
// it: the arm, the propensity logged with the assignment, the stratum and
// the primary metric's per-request value.
type LoggedOutcome struct {
	Arm        int // index in Spec.Arms
	Propensity float64
	Stratum    string
	Y          float64
}

// LoggedGroup is the requests of one (stratum, arm, propensity) with the
// count, sum and sum of squares of their values: the estimators below are
// sums of per-request terms linear in y, so these aggregates (what
// ClickHouse returns) give them exactly.
type LoggedGroup struct {
	Arm        int     `json:"arm"`
	Propensity float64 `json:"propensity"`
	Stratum    string  `json:"stratum"`
	N          float64 `json:"n"`
	Sum        float64 `json:"sum"`
	SumSq      float64 `json:"sum_sq"`
}

// Groups are the rows as groups of one request each.
func Groups(rows []LoggedOutcome) []LoggedGroup {
	out := make([]LoggedGroup, len(rows))
	for i, r := range rows {
		out[i] = LoggedGroup{Arm: r.Arm, Propensity: r.Propensity, Stratum: r.Stratum, N: 1, Sum: r.Y, SumSq: r.Y * r.Y}
	}
	return out
}

// BanditMethod names the estimator on the results page.
const BanditMethod = "doubly robust with the logged propensities (per-stratum arm means as the outcome model)"

// BanditArm is one arm of a bandit report: the value the primary metric
// would have had had every request of the phase been served by the arm.
type BanditArm struct {
	Arm            string  `json:"arm"`
	Control        bool    `json:"control"`
	Requests       int     `json:"requests"`
	Share          float64 `json:"share"` // of the phase's requests, as allocated
	MeanPropensity float64 `json:"mean_propensity"`
	IPS            Value   `json:"ips"`
	DR             Value   `json:"dr"`
	// Delta is DR's difference from control, paired over requests.
	Delta *Value `json:"delta,omitempty"`
}

// BanditReport is the analysis of a bandit experiment phase. The units of
// a bandit were not split at fixed shares, so the fixed-split statistics
// (SRM, per-arm means, CUPED, mSPRT) do not apply: every estimate weights
// each request by the inverse of its logged propensity.
type BanditReport struct {
	Experiment    string               `json:"experiment"`
	PrimaryMetric string               `json:"primary_metric"`
	Method        string               `json:"method"`
	Alpha         float64              `json:"alpha"`
	Requests      int                  `json:"requests"`
	Arms          []BanditArm          `json:"arms"`
	Epoch         int                  `json:"epoch"`
	Weights       map[string][]float64 `json:"weights,omitempty"` // in force now
	// Uniform is the value of the equal split over the arms (what a
	// fixed A/B of the same arms would have yielded), estimated the same
	// way.
	Uniform Value `json:"uniform"`
}

// AnalyzeBandit estimates, for each arm, the primary metric's value had
// every request been served by it, from the requests the bandit served:
// inverse-propensity (IPS: mean of 1[A=a] y / p) and doubly robust (DR:
// mean of q(s, a) + 1[A=a] (y - q(s, a)) / p with q the arm's mean in the
// request's stratum), with normal intervals from the per-request terms.
// Requests are treated as independent, which holds for unit "request";
// with user units the intervals are optimistic.
func AnalyzeBandit(s Spec, groups []LoggedGroup, alpha float64) BanditReport {
	k := len(s.Arms)
	rep := BanditReport{Experiment: s.ID, PrimaryMetric: s.PrimaryMetric, Method: BanditMethod, Alpha: alpha}
	if s.Bandit != nil {
		rep.Epoch, rep.Weights = s.Bandit.Epoch, s.Bandit.Weights
	}
	type cell struct{ n, sum float64 }
	q := map[string][]cell{}
	counts := make([]float64, k)
	props := make([]float64, k)
	var n float64
	var valid []LoggedGroup
	for _, g := range groups {
		if g.Arm < 0 || g.Arm >= k || g.N <= 0 || !(g.Propensity > 0) {
			continue
		}
		valid = append(valid, g)
		c := q[g.Stratum]
		if c == nil {
			c = make([]cell, k)
			q[g.Stratum] = c
		}
		c[g.Arm].n += g.N
		c[g.Arm].sum += g.Sum
		counts[g.Arm] += g.N
		props[g.Arm] += g.N * g.Propensity
		n += g.N
	}
	rep.Requests = int(n)
	// q(s, a): the arm's mean in the stratum, else its overall mean.
	overall := make([]float64, k)
	for a := range k {
		var cn, sum float64
		for _, c := range q {
			cn += c[a].n
			sum += c[a].sum
		}
		if cn > 0 {
			overall[a] = sum / cn
		}
	}
	model := func(st string, a int) float64 {
		if c := q[st]; c != nil && c[a].n > 0 {
			return c[a].sum / c[a].n
		}
		return overall[a]
	}
	// Each request of group g contributes alpha + beta*y to an estimator.
	type linear func(g LoggedGroup) (alpha, beta float64)
	ips := func(a int) linear {
		return func(g LoggedGroup) (float64, float64) {
			if g.Arm != a {
				return 0, 0
			}
			return 0, 1 / g.Propensity
		}
	}
	dr := func(a int) linear {
		return func(g LoggedGroup) (float64, float64) {
			m := model(g.Stratum, a)
			if g.Arm != a {
				return m, 0
			}
			return m - m/g.Propensity, 1 / g.Propensity
		}
	}
	z := distuv.UnitNormal.Quantile(1 - alpha/2)
	estimate := func(l linear) Value {
		var sum, ss float64
		for _, g := range valid {
			al, be := l(g)
			sum += g.N*al + be*g.Sum
			ss += g.N*al*al + 2*al*be*g.Sum + be*be*g.SumSq
		}
		return meanCI(n, sum, ss, z)
	}
	ctl := 0
	for i, a := range s.Arms {
		if a.Name == s.Control {
			ctl = i
		}
	}
	for a := range k {
		ba := BanditArm{Arm: s.Arms[a].Name, Control: a == ctl, Requests: int(counts[a]), IPS: estimate(ips(a)), DR: estimate(dr(a))}
		if n > 0 {
			ba.Share = counts[a] / n
		}
		if counts[a] > 0 {
			ba.MeanPropensity = props[a] / counts[a]
		}
		if a != ctl {
			da, dc := dr(a), dr(ctl)
			v := estimate(func(g LoggedGroup) (float64, float64) {
				a1, b1 := da(g)
				a2, b2 := dc(g)
				return a1 - a2, b1 - b2
			})
			ba.Delta = &v
		}
		rep.Arms = append(rep.Arms, ba)
	}
	rep.Uniform = estimate(func(g LoggedGroup) (float64, float64) {
		var al, be float64
		for a := range k {
			x, y := dr(a)(g)
			al += x / float64(k)
			be += y / float64(k)
		}
		return al, be
	})
	return rep
}

// meanCI is the mean of n terms from their sum and sum of squares, with a
// normal interval of half-width z × SE.
func meanCI(n, sum, ss, z float64) Value {
	if n < 2 {
		v := Value{Value: math.NaN()}
		if n == 1 {
			v.Value = sum
		}
		return v
	}
	mean := sum / n
	v := math.Max(0, (ss-n*mean*mean)/(n-1))
	se := math.Sqrt(v / n)
	return Value{Value: mean, CILow: f(mean - z*se), CIHigh: f(mean + z*se)}
}

// WriteText prints the report for a terminal.
func (r *BanditReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s (bandit, epoch %d): %d requests, analysed by %s\n", r.Experiment, r.Epoch, r.Requests, r.Method)
	for _, a := range r.Arms {
		delta := ""
		if a.Delta != nil {
			delta = fmt.Sprintf("  vs control %+.4f", a.Delta.Value)
		}
		fmt.Fprintf(w, "  %-16s %6d requests (%.1f%%)  %s if all served by it: %.4f (DR), %.4f (IPS)%s\n",
			a.Arm, a.Requests, 100*a.Share, r.PrimaryMetric, a.DR.Value, a.IPS.Value, delta)
	}
	for k, wt := range r.Weights {
		fmt.Fprintf(w, "  weights in force (%s): %v\n", k, wt)
	}
}
