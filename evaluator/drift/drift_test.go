package drift_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/routelab/routelab/evaluator/drift"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// Reference values from scipy 1.10.1 (Debian python3-scipy):
//
//	stats.ks_2samp(a, b).statistic                          = 0.42
//	special.kolmogorov(sqrt(25*20/45) * 0.42)                = 0.03968187953811441
//	stats.chi2_contingency([[120,90,40],[80,100,70]],
//	                       correction=False)                 = (16.708133971291865, 0.000235437049576964, 2)
//	sqrt(16.708133971291865 / 500)  (Cramér's V)             = 0.18280117051754272
//	PSI([.25,.25,.25,.25] -> [.1,.2,.3,.4]) by hand/numpy    = 0.22821740957339182
//	special.kolmogorov(1.0), (0.5), (1.6)                    = 0.26999967167735456, 0.9639452436648751, 0.011952043239196616
var (
	ksA = []float64{0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64, 0.05, -0.06, 0.64, -0.82, 0.37, 1.77, 1.09, -1.28, 2.36, 1.31, 1.05, -0.32, -0.4, 1.06, -2.47}
	ksB = []float64{2.20, 1.14, 0.99, 0.36, 1.73, 0.15, 2.02, 1.61, 0.82, 1.55, 0.41, 1.91, 0.79, 1.44, 2.85, 0.51, 1.01, 0.12, -0.30, 1.60}
)

func TestAgainstScipy(t *testing.T) {
	ks := drift.KS(ksA, ksB)
	chi := drift.ChiSquare([]float64{120, 90, 40}, []float64{80, 100, 70})
	tests := []struct {
		name      string
		got, want float64
	}{
		{"ks D", ks.D, 0.42},
		{"ks p", ks.PValue, 0.03968187953811441},
		{"ks symmetric", drift.KS(ksB, ksA).D, 0.42},
		{"chi2", chi.Chi2, 16.708133971291865},
		{"chi2 p", chi.PValue, 0.000235437049576964},
		{"chi2 df", float64(chi.DF), 2},
		{"cramers v", chi.CramersV, 0.18280117051754272},
		{"psi", drift.PSI([]float64{25, 25, 25, 25}, []float64{10, 20, 30, 40}), 0.22821740957339182},
		{"psi same", drift.PSI([]float64{1, 2, 3}, []float64{10, 20, 30}), 0},
		{"tv", drift.TV([]float64{50, 50}, []float64{80, 20}), 0.3},
	}
	for _, tt := range tests {
		if !near(tt.got, tt.want, 1e-9) {
			t.Errorf("%s = %.15g, want %.15g", tt.name, tt.got, tt.want)
		}
	}
	// the Kolmogorov survival function itself, through KSBinned on
	// histograms chosen so sqrt(nm/(n+m)) D hits 1.0, 0.5 and 1.6
	for _, tt := range []struct{ x, want float64 }{{1.0, 0.26999967167735456}, {0.5, 0.9639452436648751}, {1.6, 0.011952043239196616}} {
		// n = m = 200 gives sqrt(100) = 10, so D = x/10
		d := tt.x / 10
		ref := []float64{100, 100}
		cur := []float64{100 + 200*d, 100 - 200*d}
		if got := drift.KSBinned(ref, cur).PValue; !near(got, tt.want, 1e-9) {
			t.Errorf("kolmogorov(%v) = %.15g, want %.15g", tt.x, got, tt.want)
		}
	}
}

func TestQuantileEdges(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	edges := drift.QuantileEdges(xs, 4)
	want := []float64{25, 50, 75}
	if len(edges) != len(want) {
		t.Fatalf("QuantileEdges = %v, want %v", edges, want)
	}
	for i := range want {
		if edges[i] != want[i] {
			t.Fatalf("QuantileEdges = %v, want %v", edges, want)
		}
	}
	h := drift.Histogram(edges, xs)
	for i, c := range h {
		if c != 25 {
			t.Errorf("Histogram bin %d = %v, want 25", i, c)
		}
	}
	// a discrete feature gets fewer bins, never empty ones
	if got := drift.QuantileEdges([]float64{0, 0, 0, 0, 1, 1, 1, 1}, 10); len(got) != 1 || got[0] != 0 {
		t.Errorf("QuantileEdges(binary) = %v, want [0]", got)
	}
}

func TestMinCount(t *testing.T) {
	var th drift.Thresholds
	c := th.Categorical("mode", []float64{10, 90}, []float64{90, 10})
	if c.Status != drift.StatusInsufficient || c.Breached {
		t.Errorf("Categorical(100 vs 100) = %+v, want insufficient and not breached", c)
	}
	c = th.Categorical("mode", []float64{100, 900}, []float64{900, 100})
	if !c.Breached {
		t.Errorf("Categorical(1000 vs 1000, swapped) = %+v, want breached", c)
	}
}

// TestEffectSizeNotPValue: on a million rows a shift of half a point in a
// share has a p-value far below any alpha, yet it is no drift worth an alarm.
func TestEffectSizeNotPValue(t *testing.T) {
	var th drift.Thresholds
	c := th.Categorical("mode", []float64{500000, 500000}, []float64{505000, 495000})
	if c.PValue > 1e-6 {
		t.Fatalf("p-value = %v; the test needs a tiny one", c.PValue)
	}
	if c.Breached {
		t.Errorf("Categorical(0.5 point shift on 1M rows) breached: %+v", c)
	}
}

// window draws one window of the synthetic traffic: prompt length
// (log-normal), edit share, route shares.
func window(rng *rand.Rand, n int, editShare float64, lenMu float64, routes []float64) (lens []float64, mode, route []float64) {
	lens = make([]float64, n)
	mode = make([]float64, 2)
	route = make([]float64, len(routes))
	for i := range n {
		lens[i] = math.Exp(lenMu + 0.6*rng.NormFloat64())
		if rng.Float64() < editShare {
			mode[1]++
		} else {
			mode[0]++
		}
		u, r := rng.Float64(), 0
		for r < len(routes)-1 && u > routes[r] {
			u -= routes[r]
			r++
		}
		route[r]++
	}
	return lens, mode, route
}

// TestFalseAlarms: 100 windows with no change against one reference, four
// checks each; the issue asks for under 1% false alarms.
func TestFalseAlarms(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	routes := []float64{0.5, 0.3, 0.15, 0.05}
	refLens, refMode, refRoute := window(rng, 5000, 0.3, 3.5, routes)
	edges := drift.QuantileEdges(refLens, 10)
	refHist := drift.Histogram(edges, refLens)
	var th drift.Thresholds
	alarms, checks := 0, 0
	maxPSI, maxKS := 0.0, 0.0
	for range 100 {
		lens, mode, route := window(rng, 5000, 0.3, 3.5, routes)
		for _, c := range []drift.Check{
			th.Continuous("prompt_len", refLens, lens),
			th.Binned("prompt_len_binned", refHist, drift.Histogram(edges, lens)),
			th.Categorical("mode", refMode, mode),
			th.RouteShare(refRoute, route),
		} {
			checks++
			if c.Breached {
				alarms++
			}
			maxPSI = math.Max(maxPSI, c.PSI)
			maxKS = math.Max(maxKS, c.KS)
		}
	}
	rate := float64(alarms) / float64(checks)
	t.Logf("false alarms %d of %d checks (%.2f%%); largest PSI %.4f, largest KS D %.4f", alarms, checks, 100*rate, maxPSI, maxKS)
	if rate >= 0.01 {
		t.Errorf("false alarm rate = %.3f, want < 0.01", rate)
	}
}

// TestDetectsShift: the same checks flag a real change.
func TestDetectsShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	refLens, refMode, refRoute := window(rng, 5000, 0.3, 3.5, []float64{0.5, 0.3, 0.15, 0.05})
	lens, mode, route := window(rng, 5000, 0.6, 3.9, []float64{0.3, 0.3, 0.35, 0.05})
	var th drift.Thresholds
	for _, c := range []drift.Check{
		th.Continuous("prompt_len", refLens, lens),
		th.Categorical("mode", refMode, mode),
		th.RouteShare(refRoute, route),
	} {
		if !c.Breached {
			t.Errorf("%s not breached on a real shift: %+v", c.Name, c)
		}
	}
}

// TestCUSUMFalseAlarms: 100 streams of 5,000 events with no change, at
// several base rates, under the default configuration.
func TestCUSUMFalseAlarms(t *testing.T) {
	var cfg drift.CUSUMConfig
	for _, p := range []float64{0.02, 0.1, 0.3, 0.5} {
		rng := rand.New(rand.NewPCG(uint64(p*1000), 1))
		alarms := 0
		for range 100 {
			d := cfg.NewCUSUM(p)
			for range 5000 {
				d.Add(rng.Float64() < p)
			}
			if d.AlarmAt() > 0 {
				alarms++
			}
		}
		t.Logf("rate %.2f: %d false alarms in 100 streams of 5000", p, alarms)
		if alarms >= 1 {
			t.Errorf("rate %.2f: %d of 100 streams alarmed, want < 1%%", p, alarms)
		}
	}
}

// TestCUSUMDelay: a QA-fail rate that rises from 0.1 to 0.25 is detected,
// within a bounded number of events (H / KL(0.25||0.15)-ish, well under 600).
func TestCUSUMDelay(t *testing.T) {
	var cfg drift.CUSUMConfig
	rng := rand.New(rand.NewPCG(9, 9))
	worst, total := 0, 0
	for range 100 {
		d := cfg.NewCUSUM(0.1)
		for range 2000 {
			d.Add(rng.Float64() < 0.1)
		}
		if d.AlarmAt() > 0 {
			t.Fatalf("alarm before the change at event %d", d.AlarmAt())
		}
		for i := 1; i <= 2000; i++ {
			if d.Add(rng.Float64() < 0.25) {
				worst = max(worst, i)
				total += i
				break
			}
			if i == 2000 {
				t.Fatalf("no alarm 2000 events after the change")
			}
		}
	}
	t.Logf("detection delay: mean %.0f, worst %d events", float64(total)/100, worst)
	if worst > 600 {
		t.Errorf("worst detection delay = %d events, want <= 600", worst)
	}
}

func TestPageHinkley(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	falseAlarms := 0
	for range 100 {
		p := drift.PageHinkley{Delta: 0.05, Lambda: 25}
		for range 5000 {
			p.Add(rng.NormFloat64() * 0.5) // log-latency noise, sd 0.5
		}
		if p.AlarmAt() > 0 {
			falseAlarms++
		}
	}
	if falseAlarms >= 1 {
		t.Errorf("Page-Hinkley: %d false alarms in 100 streams, want < 1%%", falseAlarms)
	}
	// latency doubles (log +0.69): detected quickly
	p := drift.PageHinkley{Delta: 0.05, Lambda: 25}
	for range 2000 {
		p.Add(rng.NormFloat64() * 0.5)
	}
	at := 0
	for i := 1; i <= 1000; i++ {
		if p.Add(0.69 + rng.NormFloat64()*0.5) {
			at = i
			break
		}
	}
	if at == 0 || at > 200 {
		t.Errorf("Page-Hinkley detected a doubling of latency after %d events, want 1..200", at)
	}
	t.Logf("page-hinkley: 0 false alarms / 100; latency x2 detected after %d events", at)
}
