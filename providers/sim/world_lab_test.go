package sim_test

import (
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/lab/labtest"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// logExplore runs a workload through the shipped exploring policy and
// returns the training examples its decision events yield.
func logExplore(t *testing.T, seed uint64, n int) []router.Example {
	t.Helper()
	items, err := datasets.Generate(seed, n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := datasets.Policy("explore")
	if err != nil {
		t.Fatal(err)
	}
	w := sim.NewWorld(router.Catalog{Models: p.Models}, 1)
	var ex []router.Example
	for i := range items {
		req := &items[i].Request
		d := router.Decide(*req, p, nil)
		s := w.Judge(req, items[i].Task, &d)
		ev := s.Event(req, &d, int64(i))
		if x, ok := router.ExampleFromDecision(&ev, req.Width, req.Height); ok {
			ex = append(ex, x)
		}
	}
	return ex
}

func jobs(t *testing.T, seed uint64, n int) []sim.Job {
	items, err := datasets.Generate(seed, n)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]sim.Job, len(items))
	for i := range items {
		out[i] = sim.Job{Req: items[i].Request, Task: items[i].Task}
	}
	return out
}

// The lab loop end to end on a small scale: a policy trained on exploration
// logs beats the hand-written rules and random routing on a held-out
// workload, close to the oracle, and its predicted P is calibrated.
func TestLabTrainedPolicyBeatsBaselines(t *testing.T) {
	labtest.Heavy(t)
	if testing.Short() {
		t.Skip("trains a policy (a few seconds); skipped with -short")
	}
	ex := logExplore(t, 11, 30000)
	models := datasets.MustCatalog()
	trained, err := router.Train(ex, router.TrainConfig{Models: models.Models, DefaultModel: models.DefaultModel})
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := datasets.Policy("rules")
	random := &router.Policy{Name: "random", Models: models.Models, Epsilon: 1}
	if err := random.Seal(); err != nil {
		t.Fatal(err)
	}
	w := sim.NewWorld(models, 5)
	js := jobs(t, 12, 20000)
	_, oracleP := w.Run("oracle", js, w.OracleChooser(rules), nil, nil)
	calib := &sim.Calib{}
	tr, _ := w.Run("trained", js, sim.PolicyChooser(trained), oracleP, calib)
	ru, _ := w.Run("rules-only", js, sim.PolicyChooser(rules), oracleP, nil)
	rn, _ := w.Run("random", js, sim.PolicyChooser(random), oracleP, nil)
	if tr.ExpectedSuccess <= ru.ExpectedSuccess || tr.ExpectedSuccess <= rn.ExpectedSuccess {
		t.Errorf("expected success trained %.3f, rules-only %.3f, random %.3f: want trained best", tr.ExpectedSuccess, ru.ExpectedSuccess, rn.ExpectedSuccess)
	}
	if tr.Regret > 0.05 {
		t.Errorf("trained regret %.3f, want < 0.05", tr.Regret)
	}
	ece, _, _ := router.Calibration(calib.P, calib.Success, nil)
	if ece > 0.04 {
		t.Errorf("held-out ECE %.4f, want <= 0.04", ece)
	}
	t.Logf("trained %+v", tr)
}

// TestJudgeCallsTheRoutedModelOnce: the verdict is one call of the routed
// model, labelled when it returned an image or timed out.
func TestJudgeCallsTheRoutedModelOnce(t *testing.T) {
	models := datasets.MustCatalog()
	w := sim.NewWorld(models, 1)
	rules, _ := datasets.Policy("rules")
	failed := 0
	for _, j := range jobs(t, 3, 5000) {
		d := router.Decide(j.Req, rules, nil)
		s := w.Judge(&j.Req, j.Task, &d)
		if s.Attempt.Model != d.Model {
			t.Fatalf("attempt %+v, want the routed model %s", s.Attempt, d.Model)
		}
		if s.Attempt.Status != "ok" {
			failed++
			if s.Success || (s.Label != (s.Attempt.Status == "timeout")) {
				t.Fatalf("failed call judged %+v", s)
			}
		}
	}
	if failed == 0 {
		t.Error("no call failed in 5000; the catalog's error rates say some must")
	}
}
