package experiments_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/routelab/routelab/experiments"
)

// Reference values below were computed with SciPy 1.10.1 (Debian
// python3-scipy) or come from R's documentation examples, as quoted.

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestSRM(t *testing.T) {
	tests := []struct {
		name           string
		give, weights  []float64
		wantChi, wantP float64
	}{
		// scipy.stats.chisquare([50, 60], [55, 55]) -> (0.9090909090909091, 0.34035574238519883)
		{"two arms", []float64{50, 60}, []float64{1, 1}, 0.9090909090909091, 0.34035574238519883},
		// scipy.stats.chisquare([1010, 985, 2005], [1000, 1000, 2000]) -> (0.3375, 0.8447200570049834)
		{"three arms unequal", []float64{1010, 985, 2005}, []float64{25, 25, 50}, 0.3375, 0.8447200570049834},
	}
	for _, tt := range tests {
		chi, p := experiments.SRM(tt.give, tt.weights)
		if !near(chi, tt.wantChi, 1e-9) || !near(p, tt.wantP, 1e-9) {
			t.Errorf("%s: SRM(%v, %v) = %v, %v, want %v, %v", tt.name, tt.give, tt.weights, chi, p, tt.wantChi, tt.wantP)
		}
	}
}

func TestWelch(t *testing.T) {
	// The Welch t-test example data from Wikipedia ("Welch's t-test", A1/A2).
	a := []float64{27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4}
	b := []float64{27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4}
	var ma, mb experiments.Moments
	for _, x := range a {
		ma.Add(x)
	}
	for _, x := range b {
		mb.Add(x)
	}
	got := experiments.Welch(ma, mb, 0.05)
	// scipy.stats.ttest_ind(b, a, equal_var=False) -> t=2.455356398286006, p=0.021378001462866985;
	// df 24.988529290231416, 95% CI (0.34923706619240935, 3.9840962671409264)
	want := experiments.Estimate{Delta: 2.166666666666668, SE: 0.8824245100137552, CILow: 0.34923706619240935, CIHigh: 3.9840962671409264, PValue: 0.021378001462866985, DF: 24.988529290231416}
	if !near(got.Delta, want.Delta, 1e-9) || !near(got.SE, want.SE, 1e-9) || !near(got.DF, want.DF, 1e-6) ||
		!near(got.CILow, want.CILow, 1e-6) || !near(got.CIHigh, want.CIHigh, 1e-6) || !near(got.PValue, want.PValue, 1e-7) {
		t.Errorf("Welch = %+v, want %+v", got, want)
	}
}

func TestTwoProportion(t *testing.T) {
	// 120/1000 vs 150/1000. scipy: se = sqrt(p1q1/n1 + p2q2/n2) = 0.015267612779999369,
	// CI 0.03 ± norm.ppf(.975)*se = (7.602882129778554e-05, 0.05992397117870221),
	// p = 2*norm.sf(0.03/se) = 0.04942075065958091.
	got := experiments.TwoProportion(120, 1000, 150, 1000, 0.05)
	if !near(got.Delta, 0.03, 1e-12) || !near(got.SE, 0.015267612779999369, 1e-12) ||
		!near(got.CILow, 7.602882129778554e-05, 1e-9) || !near(got.CIHigh, 0.05992397117870221, 1e-9) || !near(got.PValue, 0.04942075065958091, 1e-9) {
		t.Errorf("TwoProportion = %+v", got)
	}
	// scipy.stats.chi2_contingency([[120, 880], [150, 850]], correction=False) -> chi2 3.8535645472061657,
	// p 0.049640386865368834 (= R prop.test(correct=FALSE)); z² = chi2.
	z, p := experiments.PooledTwoProportionZ(120, 1000, 150, 1000)
	if !near(z*z, 3.8535645472061657, 1e-9) || !near(p, 0.049640386865368834, 1e-9) {
		t.Errorf("PooledTwoProportionZ = %v, %v, want z²=3.8535645472061657, p=0.049640386865368834", z, p)
	}
}

func TestRatioDelta(t *testing.T) {
	x1 := []float64{3, 5, 2, 8, 4, 6, 1, 7}
	y1 := []float64{1, 2, 1, 3, 2, 2, 1, 3}
	x2 := []float64{4, 6, 3, 9, 5, 8, 2, 9, 4}
	y2 := []float64{1, 2, 1, 3, 2, 3, 1, 3, 1}
	var a, b experiments.RatioMoments
	for i := range x1 {
		a.Add(x1[i], y1[i])
	}
	for i := range x2 {
		b.Add(x2[i], y2[i])
	}
	// numpy: np.cov(X, Y, ddof=1); v = (Sxx/my² − 2 mx Sxy/my³ + mx² Syy/my⁴)/n -> ratio 2.4, var 0.026819047619047715
	if !near(a.Ratio(), 2.4, 1e-12) || !near(a.RatioVar(), 0.026819047619047715, 1e-12) {
		t.Errorf("ratio = %v var %v, want 2.4 var 0.026819047619047715", a.Ratio(), a.RatioVar())
	}
	got := experiments.RatioDelta(a, b, 0.05)
	// delta 0.5411764705882356, se 0.21207583032232766, CI (0.12551548116504585, 0.9568374600114253), p 0.010716603515918459
	if !near(got.Delta, 0.5411764705882356, 1e-12) || !near(got.SE, 0.21207583032232766, 1e-12) ||
		!near(got.CILow, 0.12551548116504585, 1e-9) || !near(got.CIHigh, 0.9568374600114253, 1e-9) || !near(got.PValue, 0.010716603515918459, 1e-9) {
		t.Errorf("RatioDelta = %+v", got)
	}
}

func TestRatioDeltaCoverage(t *testing.T) {
	// Seeded simulation: units with a random number of requests and
	// correlated costs; the 95% delta-method interval for the difference of
	// two identical arms must cover 0 about 95% of the time.
	rng := rand.New(rand.NewPCG(11, 12))
	const sims = 1000
	covered := 0
	for range sims {
		var a, b experiments.RatioMoments
		for range 400 {
			for _, m := range []*experiments.RatioMoments{&a, &b} {
				req := float64(1 + rng.IntN(6))
				cost := req*0.04 + rng.NormFloat64()*0.02*math.Sqrt(req)
				m.Add(cost, req)
			}
		}
		if e := experiments.RatioDelta(a, b, 0.05); e.CILow <= 0 && e.CIHigh >= 0 {
			covered++
		}
	}
	if c := float64(covered) / sims; c < 0.93 || c > 0.97 {
		t.Errorf("delta-method coverage = %v, want about 0.95", c)
	}
}

func TestCUPED(t *testing.T) {
	ya := []float64{10, 12, 9, 14, 11, 13}
	xa := []float64{9, 11, 9, 13, 10, 12}
	yb := []float64{12, 14, 10, 15, 13, 16, 12}
	xb := []float64{10, 12, 9, 13, 11, 14, 11}
	var a, b experiments.CovMoments
	for i := range ya {
		a.Add(ya[i], xa[i])
	}
	for i := range yb {
		b.Add(yb[i], xb[i])
	}
	got := experiments.CUPED(a, b, 0.05)
	// numpy/scipy: theta = cov(Y,X)/var(X) pooled = 1.203271028037383; Welch on the adjusted
	// values: delta 0.7260792167334209, CI (0.2467525116900875, 1.2054059217767543),
	// p 0.006693001527325235; variance reduction 0.9332599087940547.
	if !near(got.Theta, 1.203271028037383, 1e-9) || !near(got.Estimate.Delta, 0.7260792167334209, 1e-9) ||
		!near(got.Estimate.CILow, 0.2467525116900875, 1e-6) || !near(got.Estimate.CIHigh, 1.2054059217767543, 1e-6) ||
		!near(got.Estimate.PValue, 0.006693001527325235, 1e-7) || !near(got.VarianceReduction, 0.9332599087940547, 1e-9) {
		t.Errorf("CUPED = %+v", got)
	}
}

func TestMSPRTMatchesMixtureIntegral(t *testing.T) {
	// Λ is the likelihood ratio of the N(0, τ²) mixture against θ = 0 for
	// δ̂ ~ N(θ, v); integrate it numerically and compare with the closed form.
	tests := []struct{ delta, v, tau2 float64 }{
		{0.01, 1e-4, 1e-4},
		{0.03, 2e-4, 5e-5},
		{-0.2, 0.01, 0.04},
		{0, 0.5, 1},
	}
	for _, tt := range tests {
		lik := func(theta float64) float64 { return distuv.Normal{Mu: theta, Sigma: math.Sqrt(tt.v)}.Prob(tt.delta) }
		prior := distuv.Normal{Mu: 0, Sigma: math.Sqrt(tt.tau2)}
		s := 12 * math.Sqrt(tt.tau2)
		mix := quad.Fixed(func(th float64) float64 { return lik(th) * prior.Prob(th) }, -s, s, 2000, nil, 0)
		want := math.Min(1, lik(0)/mix)
		p, _ := experiments.MSPRT(tt.delta, tt.v, tt.tau2, 0.05)
		if !near(p, want, 1e-6*math.Max(1, want)) {
			t.Errorf("MSPRT(%v, %v, %v) p = %v, want %v", tt.delta, tt.v, tt.tau2, p, want)
		}
	}
}

func TestMSPRTIntervalMatchesPValue(t *testing.T) {
	// The always-valid interval excludes 0 exactly when the always-valid
	// p-value is below alpha.
	for _, delta := range []float64{0.001, 0.02, 0.035, 0.05, 0.08} {
		p, hw := experiments.MSPRT(delta, 1e-4, 1e-4, 0.05)
		if (p < 0.05) != (math.Abs(delta) > hw) {
			t.Errorf("delta %v: p = %v but half-width %v", delta, p, hw)
		}
	}
}

func TestPowerAndSampleSize(t *testing.T) {
	// R: power.prop.test(p1 = .50, p2 = .75, power = .90) => n = 76.7 (76.70692845177743 with scipy)
	if n := experiments.SampleSizeProportions(0.5, 0.75, 0.05, 0.9); !near(n, 76.70692845177743, 1e-6) {
		t.Errorf("SampleSizeProportions(.5, .75, .05, .9) = %v, want 76.7069", n)
	}
	// R: power.prop.test(n = 50, p1 = .50, p2 = .75) => power = 0.7401659
	if p := experiments.PowerProportions(0.5, 0.75, 50, 0.05); !near(p, 0.7401659013313879, 1e-7) {
		t.Errorf("PowerProportions(.5, .75, 50) = %v, want 0.7401659", p)
	}
	// R: power.t.test(n = 20, delta = 1) => power = 0.8689528
	if p := experiments.PowerMeans(1, 1, 20, 0.05); !near(p, 0.8689528015516763, 1e-6) {
		t.Errorf("PowerMeans(1, 1, 20) = %v, want 0.8689528", p)
	}
	// R: power.t.test(power = .90, delta = 1) => n = 22.02110
	n, err := experiments.SampleSizeMeans(1, 1, 0.05, 0.9)
	if err != nil || !near(n, 22.021095496397997, 1e-4) {
		t.Errorf("SampleSizeMeans(1, 1, .05, .9) = %v, %v, want 22.02110", n, err)
	}
}

func TestMultipleTesting(t *testing.T) {
	p := []float64{0.01, 0.04, 0.03, 0.005}
	// R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") => 0.03 0.06 0.06 0.02
	// R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "BH")   => 0.02 0.04 0.04 0.02
	tests := []struct {
		name string
		fn   func([]float64) []float64
		want []float64
	}{
		{"holm", experiments.Holm, []float64{0.03, 0.06, 0.06, 0.02}},
		{"BH", experiments.BenjaminiHochberg, []float64{0.02, 0.04, 0.04, 0.02}},
	}
	for _, tt := range tests {
		got := tt.fn(p)
		for i := range got {
			if !near(got[i], tt.want[i], 1e-12) {
				t.Errorf("%s(%v) = %v, want %v", tt.name, p, got, tt.want)
				break
			}
		}
	}
	// R: p.adjust(c(0.02, 0.5, 0.9), "holm") => 0.06 1.00 1.00 (capped at 1)
	if got := experiments.Holm([]float64{0.02, 0.5, 0.9}); got[1] != 1 || got[2] != 1 || !near(got[0], 0.06, 1e-12) {
		t.Errorf("Holm capped = %v", got)
	}
}
