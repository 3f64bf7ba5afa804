package jobs_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/experiments/ope"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/jobstest"
	"github.com/routelab/routelab/lab/labtest"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// TestLabOPECoverageOnSimulator is the OPE validation on routelab's
// own simulated world: the logging policy is the shipped explore policy,
// the candidate a classifier trained on another workload, the population
// 20,000 requests of the workload generator whose outcome under every
// model the simulator decides (its hidden truth). The candidate's true
// value is the mean over the population of sum_a candidate(a|x) * Y(x, a).
// In each of 200 seeded trials 2,000 requests are drawn with their logged
// model drawn from the explore policy's distribution; jobs.EvaluateLogged
// (the code jobs ope runs) must cover the truth with its 95% interval in
// >= 90% of the trials for IPS, SNIPS and DR.
func TestLabOPECoverageOnSimulator(t *testing.T) {
	labtest.Heavy(t)
	if testing.Short() {
		t.Skip("200 OPE trials")
	}
	cat := datasets.MustCatalog()
	live, err := datasets.Policy("explore")
	if err != nil {
		t.Fatal(err)
	}
	cand := jobstest.TrainedPolicy(t)
	items, err := datasets.Generate(7, 20000)
	if err != nil {
		t.Fatal(err)
	}
	world := sim.NewWorld(cat, 7)

	type unit struct {
		req     router.Request
		logging []ope.ActionProb
		y       map[string]float64
	}
	pool := make([]unit, 0, len(items))
	var truth float64
	for _, it := range items {
		dl := router.Decide(it.Request, live, nil)
		logging := jobs.Distribution(dl, live)
		target := jobs.Distribution(router.Decide(it.Request, cand, nil), cand)
		if logging == nil || target == nil {
			continue
		}
		// Y(x, a): the simulator's outcome of sending x to a (no fallback),
		// at the logging policy's edit depth
		y := map[string]float64{}
		outcome := func(model string) {
			if _, ok := y[model]; ok {
				return
			}
			d := router.Decision{Model: model, EditDepth: dl.EditDepth}
			if world.Judge(&it.Request, it.Task, &d).Success {
				y[model] = 1
			} else {
				y[model] = 0
			}
		}
		for _, a := range logging {
			outcome(a.Action)
		}
		var v float64
		for _, a := range target {
			outcome(a.Action)
			v += a.P * y[a.Action]
		}
		truth += v
		pool = append(pool, unit{req: it.Request, logging: logging, y: y})
	}
	truth /= float64(len(pool))
	t.Logf("population %d requests; candidate %s true value %.4f", len(pool), cand.Version, truth)

	const trials, n = 200, 2000
	var cover [3]int
	var bias, width [3]float64
	for trial := range trials {
		rng := rand.New(rand.NewPCG(uint64(trial), 11))
		logged := make([]jobs.LoggedRequest, n)
		for i := range logged {
			u := pool[rng.IntN(len(pool))]
			r, acc := rng.Float64(), 0.0
			a := u.logging[len(u.logging)-1]
			for _, ap := range u.logging {
				acc += ap.P
				if r < acc {
					a = ap
					break
				}
			}
			logged[i] = jobs.LoggedRequest{Req: u.req, Model: a.Action, Propensity: a.P, Y: u.y[a.Action]}
		}
		rep := jobs.EvaluateLogged(logged, cand, live, jobs.Window{}, jobs.OPEOptions{Options: ope.Options{Bootstrap: 200, Seed: uint64(trial)}})
		if rep.Refused {
			t.Fatalf("trial %d refused: %s", trial, rep.Reason)
		}
		for i, e := range []ope.Estimate{rep.IPS, rep.SNIPS, rep.DR} {
			if e.CILow <= truth && truth <= e.CIHigh {
				cover[i]++
			}
			bias[i] += (e.Value - truth) / trials
			width[i] += (e.CIHigh - e.CILow) / trials
		}
	}
	for i, name := range []string{"ips", "snips", "dr"} {
		c := float64(cover[i]) / trials
		t.Logf("%s: coverage %.3f of %d trials, mean bias %+.4f, mean interval width %.4f", name, c, trials, bias[i], width[i])
		if c < 0.90 {
			t.Errorf("%s coverage = %.3f, want >= 0.90", name, c)
		}
		if math.Abs(bias[i]) > 0.01 {
			t.Errorf("%s mean bias = %+.4f, want |bias| <= 0.01", name, bias[i])
		}
	}
}
