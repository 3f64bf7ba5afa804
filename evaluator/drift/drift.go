// Package drift detects that the traffic or the world has moved away from
// what a routing policy was trained on. It compares a current window with
// the reference distributions stored in the live policy (PSI on binned
// features, two-sample KS on continuous ones, chi-square on categorical ones,
// the shift in route shares) and watches outcome rates as streams (CUSUM on
// Bernoulli rates, Page-Hinkley on means).
//
// Windows in production hold millions of rows, where any p-value is tiny.
// So a check breaches on an effect size (PSI, the KS statistic D, Cramér's V,
// total-variation distance) over a threshold, and only when both sides hold
// at least a minimum count; p-values are reported and also required to be
// small, which only matters on small windows. The package is pure.
package drift

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// Thresholds decide when a check breaches. The zero value is usable:
// Defaults fills it with the documented defaults.
type Thresholds struct {
	// MinCount is the fewest observations each side (reference and
	// current) must hold for a check to run at all; smaller windows report
	// status "insufficient" and never breach. Default 200.
	MinCount float64 `json:"min_count"`
	// PSI breaches at or above this population stability index. Default
	// 0.2 (the usual reading: < 0.1 stable, 0.1-0.2 moderate, > 0.2 shifted).
	PSI float64 `json:"psi"`
	// KS breaches when the two-sample Kolmogorov-Smirnov statistic D (the
	// largest gap between the two CDFs) is at least this. Default 0.1.
	KS float64 `json:"ks"`
	// CramersV breaches a categorical chi-square check when the effect
	// size V = sqrt(chi2 / (N (k-1))) is at least this. Default 0.1.
	CramersV float64 `json:"cramers_v"`
	// RouteShareTV breaches the route-share check when the total-variation
	// distance between route shares (half the L1 distance) is at least
	// this. Default 0.1: a tenth of traffic moved between models.
	RouteShareTV float64 `json:"route_share_tv"`
	// Alpha is the p-value a KS or chi-square check must also fall below;
	// it keeps small windows from breaching on noise. Default 0.01.
	Alpha float64 `json:"alpha"`
}

// Defaults returns t with zero fields set to their documented defaults.
func (t Thresholds) Defaults() Thresholds {
	if t.MinCount <= 0 {
		t.MinCount = 200
	}
	if t.PSI <= 0 {
		t.PSI = 0.2
	}
	if t.KS <= 0 {
		t.KS = 0.1
	}
	if t.CramersV <= 0 {
		t.CramersV = 0.1
	}
	if t.RouteShareTV <= 0 {
		t.RouteShareTV = 0.1
	}
	if t.Alpha <= 0 {
		t.Alpha = 0.01
	}
	return t
}

// Status of one check.
const (
	StatusOK           = "ok"
	StatusBreached     = "breached"
	StatusInsufficient = "insufficient" // too few observations on a side
)

// Check is the outcome of one comparison.
type Check struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"` // psi | ks | chi2 | route_share
	PSI      float64 `json:"psi"`
	KS       float64 `json:"ks"`
	Chi2     float64 `json:"chi2,omitempty"`
	CramersV float64 `json:"cramers_v,omitempty"`
	TV       float64 `json:"tv,omitempty"`
	PValue   float64 `json:"p_value,omitempty"`
	NRef     float64 `json:"n_ref"`
	NCur     float64 `json:"n_cur"`
	Status   string  `json:"status"`
	Breached bool    `json:"breached"`
}

// psiFloor is the proportion an empty bin is given so PSI stays finite; it
// is small enough not to dominate a real shift.
const psiFloor = 1e-4

// PSI is the population stability index of two histograms over the same
// bins: sum (c_i - r_i) ln(c_i / r_i) over bin proportions, with empty
// bins floored at 1e-4.
func PSI(ref, cur []float64) float64 {
	rp, cp := proportions(ref), proportions(cur)
	psi := 0.0
	for i := range rp {
		r, c := math.Max(rp[i], psiFloor), math.Max(cp[i], psiFloor)
		psi += (c - r) * math.Log(c/r)
	}
	return psi
}

func proportions(counts []float64) []float64 {
	t := sum(counts)
	out := make([]float64, len(counts))
	if t == 0 {
		return out
	}
	for i, c := range counts {
		out[i] = c / t
	}
	return out
}

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

// QuantileEdges returns the inner edges of up to bins equal-frequency bins
// of the reference sample (duplicates removed, so a discrete feature gets
// fewer bins). A value v falls in bin i when edges[i-1] < v <= edges[i].
func QuantileEdges(ref []float64, bins int) []float64 {
	if len(ref) == 0 || bins < 2 {
		return nil
	}
	s := append([]float64(nil), ref...)
	sort.Float64s(s)
	var edges []float64
	for i := 1; i < bins; i++ {
		k := int(math.Ceil(float64(i)*float64(len(s))/float64(bins))) - 1
		e := s[max(k, 0)]
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	if len(edges) > 0 && edges[len(edges)-1] >= s[len(s)-1] {
		edges = edges[:len(edges)-1]
	}
	return edges
}

// Histogram counts xs into the len(edges)+1 bins the edges define.
func Histogram(edges, xs []float64) []float64 {
	h := make([]float64, len(edges)+1)
	for _, x := range xs {
		h[sort.SearchFloat64s(edges, x)]++
	}
	return h
}

// KSResult is a two-sample Kolmogorov-Smirnov test.
type KSResult struct {
	D      float64 // sup |F_a - F_b|
	PValue float64 // asymptotic two-sided p-value
}

// KS is the two-sample Kolmogorov-Smirnov test on raw samples. The p-value
// is the asymptotic Kolmogorov distribution at sqrt(n m / (n + m)) D, which
// is scipy.stats.ks_2samp(method="asymp") for large samples.
func KS(a, b []float64) KSResult {
	if len(a) == 0 || len(b) == 0 {
		return KSResult{PValue: 1}
	}
	x := append([]float64(nil), a...)
	y := append([]float64(nil), b...)
	sort.Float64s(x)
	sort.Float64s(y)
	n, m := float64(len(x)), float64(len(y))
	var i, j int
	d := 0.0
	for i < len(x) && j < len(y) {
		v := math.Min(x[i], y[j])
		for i < len(x) && x[i] <= v {
			i++
		}
		for j < len(y) && y[j] <= v {
			j++
		}
		d = math.Max(d, math.Abs(float64(i)/n-float64(j)/m))
	}
	return KSResult{D: d, PValue: kolmogorovSF(math.Sqrt(n*m/(n+m)) * d)}
}

// KSBinned is the KS statistic of two histograms over the same ordered bins:
// the largest gap between their CDFs at the bin edges. It is a lower bound
// on the raw-sample D, exact when no two values share a bin; it is what can
// be computed against a reference stored as a histogram.
func KSBinned(ref, cur []float64) KSResult {
	n, m := sum(ref), sum(cur)
	if n == 0 || m == 0 {
		return KSResult{PValue: 1}
	}
	var fr, fc, d float64
	for i := range ref {
		fr += ref[i] / n
		fc += cur[i] / m
		d = math.Max(d, math.Abs(fr-fc))
	}
	return KSResult{D: d, PValue: kolmogorovSF(math.Sqrt(n*m/(n+m)) * d)}
}

// kolmogorovSF is P(K > x) for the Kolmogorov distribution:
// 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 x^2).
func kolmogorovSF(x float64) float64 {
	if x <= 0 {
		return 1
	}
	if x < 0.2 {
		// the alternating series converges slowly here; the value is 1 to
		// within 1e-16
		return 1
	}
	s := 0.0
	for k := 1; k <= 100; k++ {
		term := math.Exp(-2 * float64(k*k) * x * x)
		if k%2 == 1 {
			s += term
		} else {
			s -= term
		}
		if term < 1e-17 {
			break
		}
	}
	return math.Min(1, math.Max(0, 2*s))
}

// Chi2Result is a chi-square test of homogeneity of two count vectors.
type Chi2Result struct {
	Chi2     float64
	DF       int
	PValue   float64
	CramersV float64
}

// ChiSquare tests whether ref and cur (counts over the same categories) come
// from the same distribution: the 2 x k contingency chi-square, categories
// empty on both sides dropped. Cramér's V = sqrt(chi2 / N) for two rows.
func ChiSquare(ref, cur []float64) Chi2Result {
	n, m := sum(ref), sum(cur)
	if n == 0 || m == 0 {
		return Chi2Result{PValue: 1}
	}
	total := n + m
	chi2, k := 0.0, 0
	for i := range ref {
		col := ref[i] + cur[i]
		if col == 0 {
			continue
		}
		k++
		er, ec := n*col/total, m*col/total
		chi2 += (ref[i]-er)*(ref[i]-er)/er + (cur[i]-ec)*(cur[i]-ec)/ec
	}
	if k < 2 {
		return Chi2Result{PValue: 1}
	}
	df := k - 1
	p := distuv.ChiSquared{K: float64(df)}.Survival(chi2)
	return Chi2Result{Chi2: chi2, DF: df, PValue: p, CramersV: math.Sqrt(chi2 / total)}
}

// TV is the total-variation distance between two count vectors' shares.
func TV(ref, cur []float64) float64 {
	rp, cp := proportions(ref), proportions(cur)
	d := 0.0
	for i := range rp {
		d += math.Abs(rp[i] - cp[i])
	}
	return d / 2
}

// Binned checks a binned numeric feature: PSI and binned KS against the
// reference histogram; it breaches when PSI or D is over its threshold.
func (t Thresholds) Binned(name string, ref, cur []float64) Check {
	t = t.Defaults()
	c := Check{Name: name, Kind: "psi", NRef: sum(ref), NCur: sum(cur)}
	if !t.enough(&c) {
		return c
	}
	c.PSI = PSI(ref, cur)
	ks := KSBinned(ref, cur)
	c.KS, c.PValue = ks.D, ks.PValue
	c.set(c.PSI >= t.PSI || (c.KS >= t.KS && c.PValue < t.Alpha))
	return c
}

// Continuous checks a numeric feature from raw samples: KS plus PSI over
// the reference's decile bins.
func (t Thresholds) Continuous(name string, ref, cur []float64) Check {
	t = t.Defaults()
	c := Check{Name: name, Kind: "ks", NRef: float64(len(ref)), NCur: float64(len(cur))}
	if !t.enough(&c) {
		return c
	}
	ks := KS(ref, cur)
	c.KS, c.PValue = ks.D, ks.PValue
	edges := QuantileEdges(ref, 10)
	c.PSI = PSI(Histogram(edges, ref), Histogram(edges, cur))
	c.set((c.KS >= t.KS && c.PValue < t.Alpha) || c.PSI >= t.PSI)
	return c
}

// Categorical checks a categorical feature given as counts over the same
// categories: chi-square with Cramér's V as the effect size, plus PSI.
func (t Thresholds) Categorical(name string, ref, cur []float64) Check {
	t = t.Defaults()
	c := Check{Name: name, Kind: "chi2", NRef: sum(ref), NCur: sum(cur)}
	if !t.enough(&c) {
		return c
	}
	r := ChiSquare(ref, cur)
	c.Chi2, c.CramersV, c.PValue = r.Chi2, r.CramersV, r.PValue
	c.PSI = PSI(ref, cur)
	c.set((c.CramersV >= t.CramersV && c.PValue < t.Alpha) || c.PSI >= t.PSI)
	return c
}

// RouteShare checks the shares of traffic per route (model) against the
// reference: total-variation distance as the effect size, with PSI and the
// chi-square p-value reported.
func (t Thresholds) RouteShare(ref, cur []float64) Check {
	t = t.Defaults()
	c := Check{Name: "route_share", Kind: "route_share", NRef: sum(ref), NCur: sum(cur)}
	if !t.enough(&c) {
		return c
	}
	c.TV = TV(ref, cur)
	c.PSI = PSI(ref, cur)
	r := ChiSquare(ref, cur)
	c.Chi2, c.CramersV, c.PValue = r.Chi2, r.CramersV, r.PValue
	c.set(c.TV >= t.RouteShareTV && c.PValue < t.Alpha)
	return c
}

func (t Thresholds) enough(c *Check) bool {
	if c.NRef < t.MinCount || c.NCur < t.MinCount {
		c.Status = StatusInsufficient
		return false
	}
	return true
}

func (c *Check) set(breached bool) {
	c.Breached = breached
	c.Status = StatusOK
	if breached {
		c.Status = StatusBreached
	}
}
