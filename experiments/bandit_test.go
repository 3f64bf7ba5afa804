package experiments_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/routelab/routelab/experiments"
)

// pBetaGreater is P(X > Y) for X ~ Beta(a1, b1), Y ~ Beta(a2, b2) by
// quadrature of f_X(x) F_Y(x): an independent check of the Monte Carlo.
func pBetaGreater(a1, b1, a2, b2 float64) float64 {
	x, y := distuv.Beta{Alpha: a1, Beta: b1}, distuv.Beta{Alpha: a2, Beta: b2}
	const n = 20000
	var sum float64
	for i := range n {
		t := (float64(i) + 0.5) / n
		sum += x.Prob(t) * y.CDF(t) / n
	}
	return sum
}

func TestThompsonWeights(t *testing.T) {
	const minShare = 0.001
	tests := []struct {
		name   string
		metric string
		arms   []experiments.ArmOutcomes
		want   float64 // P(arm 0 is best)
	}{
		// Beta(1+s, 1+f) posteriors, the answer by quadrature.
		{"beta close", "success_rate", []experiments.ArmOutcomes{{N: 100, Sum: 62}, {N: 120, Sum: 68}}, pBetaGreater(63, 39, 69, 53)},
		{"beta far", "success_rate", []experiments.ArmOutcomes{{N: 1000, Sum: 900}, {N: 1000, Sum: 500}}, 1},
		// Lower is better: P(B > A) for the failure rate is P(A's success higher).
		{"beta lower is better", "error_rate", []experiments.ArmOutcomes{{N: 100, Sum: 38}, {N: 120, Sum: 52}}, pBetaGreater(1+52, 1+68, 1+38, 1+62)},
		// Normal(mean, se): latency 1000 vs 1020 ms, sd 100, n 100 each:
		// P(A lower) = Phi(20 / sqrt(10^2 + 10^2)) = Phi(1.4142) = 0.92135.
		{"gaussian lower is better", "latency_ms", []experiments.ArmOutcomes{gauss(100, 1000, 100), gauss(100, 1020, 100)}, 0.92135},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			w, err := experiments.ThompsonWeights(tt.metric, tt.arms, minShare, rng)
			if err != nil {
				t.Fatal(err)
			}
			want := minShare + (1-2*minShare)*tt.want
			t.Logf("weights %.4f, want arm 0 at %.4f", w, want)
			// 2000 draws: sd of the estimate <= 0.5/sqrt(2000) = 0.011.
			if math.Abs(w[0]-want) > 0.035 || math.Abs(w[0]+w[1]-1) > 1e-9 {
				t.Errorf("ThompsonWeights = %v, want arm 0 at %.4f and a sum of 1", w, want)
			}
		})
	}
	if _, err := experiments.ThompsonWeights("latency_p95_ms", []experiments.ArmOutcomes{{}, {}}, minShare, rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Error("ThompsonWeights(latency_p95_ms) = nil error, want one: a quantile has no per-request value")
	}
}

// gauss is the aggregates of n values with this mean and sample sd.
func gauss(n, mean, sd float64) experiments.ArmOutcomes {
	return experiments.ArmOutcomes{N: n, Sum: n * mean, SumSq: (n-1)*sd*sd + n*mean*mean}
}

func MustBandit(t testing.TB, strata ...string) experiments.Spec {
	t.Helper()
	s := experiments.Spec{
		ID: "bandit-1", Name: "bandit", Owner: "t", Traffic: 1, Unit: experiments.UnitRequest,
		PrimaryMetric: "success_rate", Status: experiments.StatusRunning, CreatedMS: 1, PhaseStarted: 1000,
		Kind: experiments.KindBandit, Bandit: &experiments.Bandit{Every: experiments.Duration(time.Minute), BurnIn: 50, MinShare: 0.05, Strata: strata},
		Arms: []experiments.Arm{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}, {Name: "c", Weight: 1}},
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatalf("bandit spec: %v", err)
	}
	all := []experiments.Spec{s}
	if err := experiments.Allocate(&all[0], nil); err != nil {
		t.Fatal(err)
	}
	return all[0]
}

func TestReweight(t *testing.T) {
	s := MustBandit(t, "group")
	agg := map[string][]experiments.ArmOutcomes{
		"text":  {{N: 200, Sum: 40}, {N: 200, Sum: 60}, {N: 200, Sum: 180}},
		"image": {{N: 200, Sum: 180}, {N: 10, Sum: 5}, {N: 200, Sum: 100}}, // b still in burn-in
	}
	start := time.UnixMilli(s.PhaseStarted)
	if _, ok, err := experiments.Reweight(s, agg, start.Add(59*time.Second)); ok || err != nil {
		t.Fatalf("Reweight before its schedule = %v, %v; want nothing done", ok, err)
	}
	next, ok, err := experiments.Reweight(s, agg, start.Add(time.Minute))
	if !ok || err != nil {
		t.Fatalf("Reweight on schedule = %v, %v", ok, err)
	}
	if next.Phase != s.Phase || next.Revision != s.Revision+1 || next.Bandit.Epoch != 1 {
		t.Errorf("phase %d revision %d epoch %d, want phase %d (weights bias nothing), revision %d, epoch 1", next.Phase, next.Revision, next.Bandit.Epoch, s.Phase, s.Revision+1)
	}
	w := next.Bandit.Weights["text"]
	if len(w) != 3 || w[2] < 0.85 || w[0] < 0.05-1e-9 || w[1] < 0.05-1e-9 || math.Abs(w[0]+w[1]+w[2]-1) > 1e-9 {
		t.Errorf("text weights = %v, want c near 0.9 and every arm at least the 0.05 floor", w)
	}
	if _, ok := next.Bandit.Weights["image"]; ok {
		t.Errorf("image weights = %v, want none while arm b is in burn-in", next.Bandit.Weights["image"])
	}
	again, _, _ := experiments.Reweight(s, agg, start.Add(time.Minute))
	if !slices.Equal(again.Bandit.Weights["text"], w) {
		t.Errorf("Reweight twice = %v and %v, want the same seeded draws", w, again.Bandit.Weights["text"])
	}
	if _, ok, _ := experiments.Reweight(next, agg, start.Add(90*time.Second)); ok {
		t.Error("Reweight 30s after the last one, every minute: done, want nothing")
	}
}

// Every unit that enters a bandit gets an arm drawn with the weights of its
// stratum, and the assignment logs exactly that weight as its propensity.
func TestBanditAssignment(t *testing.T) {
	s := MustBandit(t, "group")
	s.Bandit.Weights = map[string][]float64{"text": {0.1, 0.2, 0.7}}
	a := experiments.NewAssigner([]experiments.Spec{s})
	tests := []struct {
		give experiments.Subject
		want []float64
	}{
		{experiments.Subject{Mode: "generate", Tier: "standard", TextHeavy: true}, []float64{0.1, 0.2, 0.7}},
		{experiments.Subject{Mode: "generate", Tier: "standard"}, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}}, // no weights yet: the arms'
	}
	for _, tt := range tests {
		const n = 20000
		counts := map[string]float64{}
		for i := range n {
			tt.give.RequestID = fmt.Sprintf("r%d", i)
			got := a.Assign(nil, tt.give)
			if len(got) != 1 {
				t.Fatalf("Assign(%s) = %d arms, want 1", tt.give.RequestID, len(got))
			}
			g := got[0]
			idx := int(g.Arm[0] - 'a')
			if math.Abs(g.Propensity-tt.want[idx]) > 1e-4 {
				t.Fatalf("Assign: arm %s propensity %v, want its weight %v", g.Arm, g.Propensity, tt.want[idx])
			}
			counts[g.Arm]++
		}
		for i, w := range tt.want {
			arm := string(rune('a' + i))
			// binomial sd at n = 20000 is at most 0.0036
			if got := counts[arm] / n; math.Abs(got-w) > 0.015 {
				t.Errorf("stratum of %+v: arm %s share %.4f, want %.4f", tt.give, arm, got, w)
			}
		}
	}
}

// A bandit's logging policy favours an arm where it does well, so the arms'
// raw means mix strata differently; the logged propensities undo it. Over
// seeded simulations the DR and IPS intervals cover each arm's true value
// about 95% of the time, and the naive mean of the favoured arm does not.
func TestAnalyzeBanditCoverage(t *testing.T) {
	s := MustBandit(t, "group")
	truth := map[string][]float64{"text": {0.3, 0.4, 0.9}, "image": {0.8, 0.75, 0.5}}
	logging := map[string][]float64{"text": {0.05, 0.15, 0.8}, "image": {0.6, 0.3, 0.1}}
	// equal mix of strata: arm values 0.55, 0.575, 0.70
	value := []float64{0.55, 0.575, 0.70}
	const sims, n = 300, 2000
	rng := rand.New(rand.NewPCG(7, 7))
	var coverDR, coverIPS, naiveOff int
	for range sims {
		rows := make([]experiments.LoggedOutcome, n)
		for i := range rows {
			st := []string{"text", "image"}[rng.IntN(2)]
			u, arm, cum := rng.Float64(), 2, 0.0
			for c, p := range logging[st] {
				if cum += p; u < cum {
					arm = c
					break
				}
			}
			y := 0.0
			if rng.Float64() < truth[st][arm] {
				y = 1
			}
			rows[i] = experiments.LoggedOutcome{Arm: arm, Propensity: logging[st][arm], Stratum: st, Y: y}
		}
		rep := experiments.AnalyzeBandit(s, experiments.Groups(rows), 0.05)
		for a, ar := range rep.Arms {
			if *ar.DR.CILow <= value[a] && value[a] <= *ar.DR.CIHigh {
				coverDR++
			}
			if *ar.IPS.CILow <= value[a] && value[a] <= *ar.IPS.CIHigh {
				coverIPS++
			}
		}
		var sum, cnt float64
		for _, r := range rows {
			if r.Arm == 2 {
				sum += r.Y
				cnt++
			}
		}
		if math.Abs(sum/cnt-value[2]) > 0.05 {
			naiveOff++
		}
	}
	for name, c := range map[string]int{"DR": coverDR, "IPS": coverIPS} {
		// 900 intervals at 95%: sd of the rate 0.007
		t.Logf("%s coverage %.3f", name, float64(c)/(3*sims))
		if r := float64(c) / (3 * sims); r < 0.92 || r > 0.98 {
			t.Errorf("%s coverage %.3f over %d intervals, want 0.95 within 0.03", name, r, 3*sims)
		}
	}
	if naiveOff < sims*9/10 {
		t.Errorf("naive mean of arm c off by > 0.05 in %d of %d runs, want nearly all (it over-weights text, 0.9 vs 0.70)", naiveOff, sims)
	}
}

func TestBanditValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*experiments.Spec)
		field string
	}{
		{"ramp", func(s *experiments.Spec) { s.Ramp = &experiments.Ramp{Steps: []float64{0.5, 1}} }, "ramp"},
		{"quantile metric", func(s *experiments.Spec) { s.PrimaryMetric = "latency_p95_ms" }, "primary_metric"},
		{"min share above 1/arms", func(s *experiments.Spec) { s.Bandit.MinShare = 0.4 }, "bandit.min_share"},
		{"unknown stratum", func(s *experiments.Spec) { s.Bandit.Strata = []string{"country"} }, "bandit.strata[0]"},
		{"weights of another arity", func(s *experiments.Spec) { s.Bandit.Weights = map[string][]float64{"": {0.5, 0.5}} }, "bandit.weights"},
		{"bandit settings on a fixed split", func(s *experiments.Spec) { s.Kind = experiments.KindFixed }, "bandit"},
		{"unknown kind", func(s *experiments.Spec) { s.Kind = "thompson" }, "kind"},
	}
	for _, tt := range tests {
		s := MustBandit(t)
		tt.edit(&s)
		err := s.Validate()
		var ve *experiments.ValidationError
		if !errorsAs(err, &ve) || ve.Field != tt.field {
			t.Errorf("%s: Validate = %v, want an error on %s", tt.name, err, tt.field)
		}
	}
}

// The warehouse hands the analysis (stratum, arm, propensity) groups, not
// requests; the estimates must be the same.
func TestAnalyzeBanditGroupsEqualRows(t *testing.T) {
	s := MustBandit(t, "group")
	rng := rand.New(rand.NewPCG(3, 3))
	var rows []experiments.LoggedOutcome
	type key struct {
		st  string
		arm int
		p   float64
	}
	byKey := map[key]*experiments.LoggedGroup{}
	for range 3000 {
		st := []string{"text", "image"}[rng.IntN(2)]
		arm := rng.IntN(3)
		p := []float64{0.2, 0.5}[rng.IntN(2)]
		y := float64(rng.IntN(2))
		rows = append(rows, experiments.LoggedOutcome{Arm: arm, Propensity: p, Stratum: st, Y: y})
		g := byKey[key{st, arm, p}]
		if g == nil {
			g = &experiments.LoggedGroup{Arm: arm, Propensity: p, Stratum: st}
			byKey[key{st, arm, p}] = g
		}
		g.N++
		g.Sum += y
		g.SumSq += y * y
	}
	var groups []experiments.LoggedGroup
	for _, g := range byKey {
		groups = append(groups, *g)
	}
	a, b := experiments.AnalyzeBandit(s, experiments.Groups(rows), 0.05), experiments.AnalyzeBandit(s, groups, 0.05)
	for i := range a.Arms {
		x, y := a.Arms[i], b.Arms[i]
		if math.Abs(x.DR.Value-y.DR.Value) > 1e-9 || math.Abs(*x.DR.CIHigh-*y.DR.CIHigh) > 1e-9 || math.Abs(*x.IPS.CILow-*y.IPS.CILow) > 1e-9 {
			t.Errorf("arm %s: rows give DR %v IPS %v, groups DR %v IPS %v", x.Arm, x.DR, x.IPS, y.DR, y.IPS)
		}
	}
}
