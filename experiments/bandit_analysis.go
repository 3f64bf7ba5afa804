package experiments

import (
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
func AnalyzeBandit(s Spec, rows []LoggedOutcome, alpha float64) BanditReport {
	k := len(s.Arms)
	rep := BanditReport{Experiment: s.ID, PrimaryMetric: s.PrimaryMetric, Method: BanditMethod, Alpha: alpha, Requests: len(rows)}
	if s.Bandit != nil {
		rep.Epoch, rep.Weights = s.Bandit.Epoch, s.Bandit.Weights
	}
	type cell struct{ n, sum float64 }
	q := map[string][]cell{}
	counts := make([]int, k)
	props := make([]float64, k)
	for _, r := range rows {
		if r.Arm < 0 || r.Arm >= k {
			continue
		}
		c := q[r.Stratum]
		if c == nil {
			c = make([]cell, k)
			q[r.Stratum] = c
		}
		c[r.Arm].n++
		c[r.Arm].sum += r.Y
		counts[r.Arm]++
		props[r.Arm] += r.Propensity
	}
	// model is q(s, a): the arm's mean in the stratum, else its overall mean.
	overall := make([]float64, k)
	for a := range k {
		var n, sum float64
		for _, c := range q {
			n += c[a].n
			sum += c[a].sum
		}
		if n > 0 {
			overall[a] = sum / n
		}
	}
	model := func(st string, a int) float64 {
		if c := q[st]; c != nil && c[a].n > 0 {
			return c[a].sum / c[a].n
		}
		return overall[a]
	}
	z := distuv.UnitNormal.Quantile(1 - alpha/2)
	ips := make([][]float64, k)
	dr := make([][]float64, k)
	for a := range k {
		ips[a] = make([]float64, len(rows))
		dr[a] = make([]float64, len(rows))
	}
	for i, r := range rows {
		for a := range k {
			m := model(r.Stratum, a)
			dr[a][i] = m
			if r.Arm == a && r.Propensity > 0 {
				ips[a][i] = r.Y / r.Propensity
				dr[a][i] += (r.Y - m) / r.Propensity
			}
		}
	}
	ctl := 0
	for i, a := range s.Arms {
		if a.Name == s.Control {
			ctl = i
		}
	}
	uniform := make([]float64, len(rows))
	for a := range k {
		ba := BanditArm{Arm: s.Arms[a].Name, Control: a == ctl, Requests: counts[a], IPS: meanCI(ips[a], z), DR: meanCI(dr[a], z)}
		if len(rows) > 0 {
			ba.Share = float64(counts[a]) / float64(len(rows))
		}
		if counts[a] > 0 {
			ba.MeanPropensity = props[a] / float64(counts[a])
		}
		if a != ctl {
			d := make([]float64, len(rows))
			for i := range d {
				d[i] = dr[a][i] - dr[ctl][i]
			}
			v := meanCI(d, z)
			ba.Delta = &v
		}
		for i := range uniform {
			uniform[i] += dr[a][i] / float64(k)
		}
		rep.Arms = append(rep.Arms, ba)
	}
	rep.Uniform = meanCI(uniform, z)
	return rep
}

// meanCI is the mean of xs with a normal interval of half-width z × SE.
func meanCI(xs []float64, z float64) Value {
	n := float64(len(xs))
	if n < 2 {
		v := Value{Value: math.NaN()}
		if n == 1 {
			v.Value = xs[0]
		}
		return v
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / n
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	se := math.Sqrt(ss / (n - 1) / n)
	return Value{Value: mean, CILow: f(mean - z*se), CIHigh: f(mean + z*se)}
}
