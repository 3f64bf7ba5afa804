package review_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/routelab/routelab/evaluator/review"
)

func comps(a, b string, aw, bw, ties int) []review.Comparison {
	var cs []review.Comparison
	for i := 0; i < aw; i++ {
		cs = append(cs, review.Comparison{A: a, B: b, Winner: "a"})
	}
	for i := 0; i < bw; i++ {
		cs = append(cs, review.Comparison{A: a, B: b, Winner: "b"})
	}
	for i := 0; i < ties; i++ {
		cs = append(cs, review.Comparison{A: a, B: b, Winner: "tie"})
	}
	return cs
}

func TestBradleyTerryTwoModels(t *testing.T) {
	// Two models, x beats y 70 of 100: the MLE is p_x/p_y = 70/30, so
	// theta_x - theta_y = ln(7/3) = 0.8473 and, centred, theta_x = 0.4236.
	// The difference has SE sqrt(1/(n p (1-p))) = sqrt(1/21) = 0.2182, so
	// each centred theta has SE 0.1091.
	rs, err := review.BradleyTerry(comps("x", "y", 70, 30, 0), 1.96)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Model != "x" {
		t.Fatalf("BradleyTerry top = %s, want x", rs[0].Model)
	}
	if got, want := rs[0].Theta, math.Log(7.0/3)/2; math.Abs(got-want) > 1e-3 {
		t.Errorf("theta_x = %.5f, want %.5f", got, want)
	}
	if got, want := rs[0].SE, math.Sqrt(1.0/21)/2; math.Abs(got-want) > 1e-3 {
		t.Errorf("SE_x = %.5f, want %.5f", got, want)
	}
	if got, want := rs[0].Elo-rs[1].Elo, 400*math.Log10(7.0/3); math.Abs(got-want) > 0.5 {
		t.Errorf("Elo gap = %.2f, want %.2f", got, want)
	}
	if rs[0].Wins != 70 || rs[1].Losses != 70 || rs[0].Compared != 100 {
		t.Errorf("counts = %+v", rs[0])
	}
}

func TestBradleyTerryTiesAreHalfWins(t *testing.T) {
	// 60 wins, 20 losses, 20 ties = 70:30 under the half-win rule.
	rs, _ := review.BradleyTerry(comps("x", "y", 60, 20, 20), 1.96)
	if got, want := rs[0].Theta-rs[1].Theta, math.Log(7.0/3); math.Abs(got-want) > 1e-3 {
		t.Errorf("theta gap = %.5f, want %.5f", got, want)
	}
}

func TestBradleyTerryScoreEquations(t *testing.T) {
	// At the MLE, each model's expected wins equal its observed wins
	// (Zermelo's conditions). Three models, a cycle with unequal margins.
	var cs []review.Comparison
	cs = append(cs, comps("a", "b", 30, 10, 0)...)
	cs = append(cs, comps("b", "c", 25, 15, 0)...)
	cs = append(cs, comps("a", "c", 12, 28, 0)...)
	rs, err := review.BradleyTerry(cs, 1.96)
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]float64{}
	for _, r := range rs {
		p[r.Model] = math.Exp(r.Theta)
	}
	obs := map[string]float64{"a": 42, "b": 35, "c": 43}
	n := map[[2]string]float64{{"a", "b"}: 40, {"b", "c"}: 40, {"a", "c"}: 40}
	for m, w := range obs {
		exp := 0.0
		for pair, cnt := range n {
			if pair[0] == m {
				exp += cnt * p[m] / (p[m] + p[pair[1]])
			} else if pair[1] == m {
				exp += cnt * p[m] / (p[m] + p[pair[0]])
			}
		}
		if math.Abs(exp-w) > 0.05 { // the 0.01 prior moves it a hair
			t.Errorf("expected wins of %s = %.3f, observed %v", m, exp, w)
		}
	}
}

func TestBradleyTerryCoverage(t *testing.T) {
	// Seeded simulation: true log-strengths known; the 95% interval of the
	// gap between the best and worst model should cover the truth ~95% of
	// the time. 200 replications, accept 88%..99%.
	truth := map[string]float64{"m1": 0.6, "m2": 0.1, "m3": -0.7}
	names := []string{"m1", "m2", "m3"}
	rng := rand.New(rand.NewPCG(7, 11))
	covered := 0
	const reps = 200
	for r := 0; r < reps; r++ {
		var cs []review.Comparison
		for i := 0; i < 300; i++ {
			a, b := names[rng.IntN(3)], names[rng.IntN(3)]
			if a == b {
				continue
			}
			pa := 1 / (1 + math.Exp(truth[b]-truth[a]))
			w := "b"
			if rng.Float64() < pa {
				w = "a"
			}
			cs = append(cs, review.Comparison{A: a, B: b, Winner: w})
		}
		rs, err := review.BradleyTerry(cs, 1.96)
		if err != nil {
			t.Fatal(err)
		}
		centre := (truth["m1"] + truth["m2"] + truth["m3"]) / 3
		for _, x := range rs {
			if x.Model == "m3" && x.Lo <= truth["m3"]-centre && truth["m3"]-centre <= x.Hi {
				covered++
			}
		}
	}
	if rate := float64(covered) / reps; rate < 0.88 || rate > 0.995 {
		t.Errorf("95%% interval coverage = %.3f, want about 0.95", rate)
	}
}

func TestBradleyTerryEmpty(t *testing.T) {
	if _, err := review.BradleyTerry(nil, 1.96); err == nil {
		t.Error("BradleyTerry(nil) gave no error")
	}
}
