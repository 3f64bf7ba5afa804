package experiments

import (
	"errors"
	"math"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// Estimate is a difference (treatment − control) with its standard error, a
// two-sided confidence interval and p-value.
type Estimate struct {
	Delta  float64 `json:"delta"`
	SE     float64 `json:"se"`
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
	PValue float64 `json:"p_value"`
	DF     float64 `json:"df,omitempty"` // Welch degrees of freedom
}

var stdNormal = distuv.Normal{Mu: 0, Sigma: 1}

// zQuantile is the standard normal quantile.
func zQuantile(p float64) float64 { return stdNormal.Quantile(p) }

// SRM is the chi-square goodness-of-fit test of observed unit counts
// against the expected shares (weights, normalized). It returns the
// statistic and its p-value with len-1 degrees of freedom.
func SRM(observed []float64, weights []float64) (chi2, p float64) {
	if len(observed) != len(weights) || len(observed) < 2 {
		return math.NaN(), math.NaN()
	}
	var n, w float64
	for i := range observed {
		n += observed[i]
		w += weights[i]
	}
	if n == 0 || w == 0 {
		return 0, 1
	}
	for i := range observed {
		e := n * weights[i] / w
		d := observed[i] - e
		chi2 += d * d / e
	}
	return chi2, distuv.ChiSquared{K: float64(len(observed) - 1)}.Survival(chi2)
}

// TwoProportion compares x2/n2 (treatment) with x1/n1 (control): the
// unpooled Wald interval for the difference and the matching z-test.
func TwoProportion(x1, n1, x2, n2, alpha float64) Estimate {
	if n1 <= 0 || n2 <= 0 {
		return nanEstimate()
	}
	p1, p2 := x1/n1, x2/n2
	se := math.Sqrt(p1*(1-p1)/n1 + p2*(1-p2)/n2)
	return normalEstimate(p2-p1, se, alpha)
}

// PooledTwoProportionZ is the classic pooled z-test (R's prop.test without
// continuity correction); it returns z and the two-sided p-value.
func PooledTwoProportionZ(x1, n1, x2, n2 float64) (z, p float64) {
	pp := (x1 + x2) / (n1 + n2)
	se := math.Sqrt(pp * (1 - pp) * (1/n1 + 1/n2))
	z = (x2/n2 - x1/n1) / se
	return z, 2 * stdNormal.Survival(math.Abs(z))
}

func normalEstimate(delta, se, alpha float64) Estimate {
	if !(se > 0) {
		return Estimate{Delta: delta, SE: se, CILow: delta, CIHigh: delta, PValue: pIfZeroSE(delta)}
	}
	z := zQuantile(1 - alpha/2)
	return Estimate{
		Delta: delta, SE: se, CILow: delta - z*se, CIHigh: delta + z*se,
		PValue: 2 * stdNormal.Survival(math.Abs(delta/se)),
	}
}

func pIfZeroSE(delta float64) float64 {
	if delta == 0 {
		return 1
	}
	return 0
}

func nanEstimate() Estimate {
	n := math.NaN()
	return Estimate{Delta: n, SE: n, CILow: n, CIHigh: n, PValue: n}
}

// Moments are the sufficient statistics of a per-unit metric.
type Moments struct {
	N     float64 `json:"n"`
	Sum   float64 `json:"sum"`
	SumSq float64 `json:"sum_sq"`
}

// Add adds one observation.
func (m *Moments) Add(x float64) { m.N++; m.Sum += x; m.SumSq += x * x }

// Mean is the sample mean.
func (m Moments) Mean() float64 { return m.Sum / m.N }

// Var is the unbiased sample variance.
func (m Moments) Var() float64 {
	if m.N < 2 {
		return math.NaN()
	}
	v := (m.SumSq - m.Sum*m.Sum/m.N) / (m.N - 1)
	return math.Max(v, 0)
}

// Welch compares the mean of b (treatment) with a (control) with Welch's
// unequal-variance t interval and test.
func Welch(a, b Moments, alpha float64) Estimate {
	return WelchFrom(a.Mean(), a.Var(), a.N, b.Mean(), b.Var(), b.N, alpha)
}

// WelchFrom is Welch's t interval from means, variances and counts.
func WelchFrom(m1, v1, n1, m2, v2, n2, alpha float64) Estimate {
	if n1 < 2 || n2 < 2 {
		return nanEstimate()
	}
	s1, s2 := v1/n1, v2/n2
	se := math.Sqrt(s1 + s2)
	delta := m2 - m1
	if !(se > 0) {
		return Estimate{Delta: delta, SE: 0, CILow: delta, CIHigh: delta, PValue: pIfZeroSE(delta)}
	}
	df := (s1 + s2) * (s1 + s2) / (s1*s1/(n1-1) + s2*s2/(n2-1))
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
	q := t.Quantile(1 - alpha/2)
	return Estimate{
		Delta: delta, SE: se, CILow: delta - q*se, CIHigh: delta + q*se,
		PValue: 2 * t.Survival(math.Abs(delta/se)), DF: df,
	}
}

// RatioMoments are the per-unit sums for a ratio metric sum(X)/sum(Y)
// (e.g. cost per image: X cost, Y images, per unit).
type RatioMoments struct {
	N     float64 `json:"n"`
	SumX  float64 `json:"sum_x"`
	SumY  float64 `json:"sum_y"`
	SumXX float64 `json:"sum_xx"`
	SumYY float64 `json:"sum_yy"`
	SumXY float64 `json:"sum_xy"`
}

// Add adds one unit.
func (r *RatioMoments) Add(x, y float64) {
	r.N++
	r.SumX += x
	r.SumY += y
	r.SumXX += x * x
	r.SumYY += y * y
	r.SumXY += x * y
}

// Ratio is sum(X)/sum(Y).
func (r RatioMoments) Ratio() float64 { return r.SumX / r.SumY }

// RatioVar is the delta-method variance of the ratio of means:
// (1/n)(σx²/μy² − 2μx σxy/μy³ + μx² σy²/μy⁴), with unbiased (co)variances.
func (r RatioMoments) RatioVar() float64 {
	n := r.N
	if n < 2 {
		return math.NaN()
	}
	mx, my := r.SumX/n, r.SumY/n
	vx := (r.SumXX - n*mx*mx) / (n - 1)
	vy := (r.SumYY - n*my*my) / (n - 1)
	cxy := (r.SumXY - n*mx*my) / (n - 1)
	v := (vx/(my*my) - 2*mx*cxy/(my*my*my) + mx*mx*vy/(my*my*my*my)) / n
	return math.Max(v, 0)
}

// RatioDelta compares ratio metrics by the delta method (normal interval):
// units are independent, requests within a unit are not.
func RatioDelta(a, b RatioMoments, alpha float64) Estimate {
	if a.N < 2 || b.N < 2 || a.SumY == 0 || b.SumY == 0 {
		return nanEstimate()
	}
	return normalEstimate(b.Ratio()-a.Ratio(), math.Sqrt(a.RatioVar()+b.RatioVar()), alpha)
}

// CovMoments are per-unit sums of a metric Y and a pre-period covariate X.
type CovMoments struct {
	N     float64 `json:"n"`
	SumY  float64 `json:"sum_y"`
	SumX  float64 `json:"sum_x"`
	SumYY float64 `json:"sum_yy"`
	SumXX float64 `json:"sum_xx"`
	SumXY float64 `json:"sum_xy"`
}

// Add adds one unit with metric y and covariate x.
func (c *CovMoments) Add(y, x float64) {
	c.N++
	c.SumY += y
	c.SumX += x
	c.SumYY += y * y
	c.SumXX += x * x
	c.SumXY += x * y
}

// CUPEDResult is a CUPED-adjusted comparison.
type CUPEDResult struct {
	Theta float64 `json:"theta"`
	// VarianceReduction is 1 − Var(adjusted)/Var(raw), pooled over arms.
	VarianceReduction float64  `json:"variance_reduction"`
	Estimate          Estimate `json:"estimate"`
}

// CUPED adjusts Y by the pre-period covariate X (Deng et al. 2013):
// θ = Cov(Y,X)/Var(X) pooled over both arms, Y' = Y − θ(X − mean X), then
// compares the adjusted means with Welch.
func CUPED(a, b CovMoments, alpha float64) CUPEDResult {
	n := a.N + b.N
	if a.N < 2 || b.N < 2 {
		return CUPEDResult{Estimate: nanEstimate()}
	}
	sx, sy := a.SumX+b.SumX, a.SumY+b.SumY
	mx, my := sx/n, sy/n
	vx := (a.SumXX + b.SumXX - n*mx*mx) / (n - 1)
	vy := (a.SumYY + b.SumYY - n*my*my) / (n - 1)
	cxy := (a.SumXY + b.SumXY - n*mx*my) / (n - 1)
	theta := 0.0
	if vx > 0 {
		theta = cxy / vx
	}
	adj := func(c CovMoments) (mean, v float64) {
		m := c.N
		ay, ax := c.SumY/m, c.SumX/m
		vyy := (c.SumYY - m*ay*ay) / (m - 1)
		vxx := (c.SumXX - m*ax*ax) / (m - 1)
		cov := (c.SumXY - m*ax*ay) / (m - 1)
		return ay - theta*(ax-mx), math.Max(vyy-2*theta*cov+theta*theta*vxx, 0)
	}
	m1, v1 := adj(a)
	m2, v2 := adj(b)
	red := 0.0
	if vy > 0 {
		red = 1 - (vy-2*theta*cxy+theta*theta*vx)/vy
	}
	return CUPEDResult{Theta: theta, VarianceReduction: red, Estimate: WelchFrom(m1, v1, a.N, m2, v2, b.N, alpha)}
}

// MSPRT is the mixture sequential probability ratio test for a difference
// whose estimate delta is approximately normal with variance v (Johari,
// Pekelis and Walsh, "Always valid inference", 2017), with a N(0, tau2)
// mixing distribution over the true difference:
//
//	Λ = sqrt(v/(v+τ²)) · exp(δ² τ² / (2 v (v+τ²)))
//
// It returns the always-valid p-value min(1, 1/Λ) at this look (a
// monitoring loop keeps the running minimum) and the half-width of the
// always-valid (1−alpha) interval δ ± sqrt(v(v+τ²)/τ² · (2 log(1/α) + log((v+τ²)/v))).
func MSPRT(delta, v, tau2, alpha float64) (p, halfWidth float64) {
	if !(v > 0) || !(tau2 > 0) {
		return math.NaN(), math.NaN()
	}
	logL := 0.5*math.Log(v/(v+tau2)) + delta*delta*tau2/(2*v*(v+tau2))
	p = math.Min(1, math.Exp(-logL))
	halfWidth = math.Sqrt(v * (v + tau2) / tau2 * (2*math.Log(1/alpha) + math.Log((v+tau2)/v)))
	return p, halfWidth
}

// Power of a two-sided two-proportion test with n units per arm (R's
// power.prop.test, strict = FALSE).
func PowerProportions(p1, p2, n, alpha float64) float64 {
	q1, q2 := 1-p1, 1-p2
	pbar, qbar := (p1+p2)/2, (q1+q2)/2
	za := zQuantile(1 - alpha/2)
	d := math.Abs(p1 - p2)
	return stdNormal.CDF((math.Sqrt(n)*d - za*math.Sqrt(2*pbar*qbar)) / math.Sqrt(p1*q1+p2*q2))
}

// SampleSizeProportions is the units per arm for a two-sided two-proportion
// test to reach power (R's power.prop.test solved for n).
func SampleSizeProportions(p1, p2, alpha, power float64) float64 {
	q1, q2 := 1-p1, 1-p2
	pbar, qbar := (p1+p2)/2, (q1+q2)/2
	za, zb := zQuantile(1-alpha/2), zQuantile(power)
	d := p1 - p2
	x := za*math.Sqrt(2*pbar*qbar) + zb*math.Sqrt(p1*q1+p2*q2)
	return x * x / (d * d)
}

// PowerMeans is the power of a two-sided two-sample t-test with n units per
// arm, effect delta and common standard deviation sd (R's power.t.test,
// strict = FALSE, via the noncentral t).
func PowerMeans(delta, sd, n, alpha float64) float64 {
	df := 2 * (n - 1)
	ncp := math.Sqrt(n/2) * math.Abs(delta) / sd
	q := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(1 - alpha/2)
	return 1 - distuv.NoncentralT{Nu: df, Mu: ncp}.CDF(q)
}

// SampleSizeMeans solves PowerMeans for n.
func SampleSizeMeans(delta, sd, alpha, power float64) (float64, error) {
	lo, hi := 2.0, 1e9
	if PowerMeans(delta, sd, hi, alpha) < power {
		return 0, errors.New("power not reachable")
	}
	for range 200 {
		mid := (lo + hi) / 2
		if PowerMeans(delta, sd, mid, alpha) < power {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-7 {
			break
		}
	}
	return (lo + hi) / 2, nil
}

// Holm adjusts p-values for the family-wise error rate (Holm 1979), as R's
// p.adjust(p, "holm").
func Holm(p []float64) []float64 {
	m := len(p)
	idx := order(p)
	out := make([]float64, m)
	running := 0.0
	for rank, i := range idx {
		v := math.Min(1, float64(m-rank)*p[i])
		running = math.Max(running, v)
		out[i] = running
	}
	return out
}

// BenjaminiHochberg adjusts p-values for the false discovery rate, as R's
// p.adjust(p, "BH").
func BenjaminiHochberg(p []float64) []float64 {
	m := len(p)
	idx := order(p)
	out := make([]float64, m)
	running := 1.0
	for rank := m - 1; rank >= 0; rank-- {
		i := idx[rank]
		v := math.Min(1, float64(m)/float64(rank+1)*p[i])
		running = math.Min(running, v)
		out[i] = running
	}
	return out
}

func order(p []float64) []int {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	return idx
}
