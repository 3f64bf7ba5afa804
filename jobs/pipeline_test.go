package jobs_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/chsource"
	"github.com/routelab/routelab/jobs/jobstest"
	"github.com/routelab/routelab/router"
)

type fakeCanary struct {
	pass  bool
	calls int
}

func (c *fakeCanary) Run(_ context.Context, cand, live *router.Policy) (jobs.CanaryResult, error) {
	c.calls++
	if !c.pass {
		return jobs.CanaryResult{Experiment: "canary-" + cand.Version, Reason: "guardrail qa_fail_rate breached at 10%"}, nil
	}
	return jobs.CanaryResult{Experiment: "canary-" + cand.Version, Passed: true}, nil
}

type fakePusher struct{ pushed []string }

func (p *fakePusher) Push(_ context.Context, pol *router.Policy) (string, error) {
	p.pushed = append(p.pushed, pol.Version)
	return pol.Version, nil
}

// worse returns live with sim-lite's calibration pinned at P = 1, so the
// candidate sends nearly everything to the cheapest, weakest model.
func worse(t *testing.T, live *router.Policy) *router.Policy {
	t.Helper()
	b, err := live.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var q router.Policy
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	q.Version, q.Checksum = "", ""
	q.Name = "worse"
	q.Calibration["sim-lite"] = router.Calibrator{Kind: "isotonic", X: []float64{-10, 10}, Y: []float64{1, 1}}
	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	return &q
}

func TestPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a policy and simulates 20k requests")
	}
	live := jobstest.TrainedPolicy(t)
	db := ingesttest.ClickHouse(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	end := jobstest.Serve(t, db, live, 21, 20000, start, false)
	s := &chsource.Store{Conn: db.Conn, DB: db.Database, Labels: jobs.DefaultLabels()}
	w := jobs.Window{From: start, To: end}
	logf := func(f string, a ...any) { t.Logf(f, a...) }
	steps := func(r jobs.PipelineReport) string {
		var b strings.Builder
		for _, s := range r.Steps {
			b.WriteString(s.Name + ":" + s.Status + " ")
		}
		return b.String()
	}

	t.Run("good candidate is pushed", func(t *testing.T) {
		c, p := &fakeCanary{pass: true}, &fakePusher{}
		rep, err := jobs.RunPipeline(ctx, s, live, w, c, p, jobs.PipelineOptions{Push: true, DriftBlocks: true, Audit: s.Audit}, logf)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Pushed || len(p.pushed) != 1 || p.pushed[0] != rep.Candidate || c.calls != 1 {
			t.Fatalf("pipeline = %s stopped at %q (%s); pushed %v, canary calls %d", steps(rep), rep.Stopped, rep.Reason, p.pushed, c.calls)
		}
		if got := steps(rep); got != "recalibrate:ok ope:ok drift:ok canary:ok push:ok " {
			t.Errorf("steps = %s", got)
		}
		if n := db.Query(t, "SELECT count() FROM audit WHERE startsWith(action, 'jobs.pipeline.')"); n != "5" {
			t.Errorf("audit rows = %s, want one per step (5)", n)
		}
	})
	t.Run("alternatives: the best that passes OPE goes on", func(t *testing.T) {
		c, p := &fakeCanary{pass: true}, &fakePusher{}
		rep, err := jobs.RunPipeline(ctx, s, live, w, c, p, jobs.PipelineOptions{Push: true, Alternatives: []jobs.Alternative{
			{Name: "live-thresholds", Recalibrate: jobs.RecalibrateJob{Candidate: jobs.CandidateOptions{KeepThresholds: true}}},
			{Name: "refit", Recalibrate: jobs.RecalibrateJob{Refit: true}},
		}}, logf)
		if err != nil {
			t.Fatal(err)
		}
		if got := steps(rep); got != "recalibrate:ok ope:ok drift:ok canary:ok push:ok " {
			t.Fatalf("steps = %s (%s)", got, rep.Reason)
		}
		built, gated := rep.Steps[0].Report.([]jobs.CandidateChoice), rep.Steps[1].Report.([]jobs.CandidateChoice)
		if len(built) != 3 || len(gated) != 3 {
			t.Fatalf("%d candidates built, %d gated, want 3", len(built), len(gated))
		}
		best, chosen := -1, -1
		for i, g := range gated {
			if built[i].Candidate == nil || g.OPE == nil {
				t.Fatalf("candidate %s: built %v, gated %v (%s)", g.Name, built[i].Candidate != nil, g.OPE != nil, g.Error)
			}
			t.Logf("%s %s: DR %.4f pass %v", g.Name, g.Version, g.OPE.DR.Value, g.OPE.Pass)
			if g.OPE.Pass && (best < 0 || g.OPE.DR.Value > gated[best].OPE.DR.Value) {
				best = i
			}
			if g.Chosen {
				chosen = i
			}
		}
		if best < 0 || chosen != best || rep.Candidate != gated[best].Version || p.pushed[0] != rep.Candidate {
			t.Errorf("chosen %d, want %d (the highest DR that passed); candidate %s, pushed %v", chosen, best, rep.Candidate, p.pushed)
		}
	})
	t.Run("worse candidate stops at the OPE gate", func(t *testing.T) {
		c, p := &fakeCanary{pass: true}, &fakePusher{}
		rep, err := jobs.RunPipeline(ctx, s, live, w, c, p, jobs.PipelineOptions{Push: true, Candidate: worse(t, live)}, logf)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Pushed || rep.Stopped != "ope" || c.calls != 0 || len(p.pushed) != 0 {
			t.Fatalf("pipeline = %s stopped at %q (%s), want a stop at ope", steps(rep), rep.Stopped, rep.Reason)
		}
		t.Logf("stopped: %s", rep.Reason)
	})
	t.Run("canary rollback stops before the push", func(t *testing.T) {
		c, p := &fakeCanary{pass: false}, &fakePusher{}
		rep, err := jobs.RunPipeline(ctx, s, live, w, c, p, jobs.PipelineOptions{Push: true, Candidate: live}, logf)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Pushed || rep.Stopped != "canary" || !strings.Contains(rep.Reason, "guardrail") {
			t.Fatalf("pipeline = %s stopped at %q (%s), want a canary rollback", steps(rep), rep.Stopped, rep.Reason)
		}
	})
	t.Run("no canary runner stops unless skipped", func(t *testing.T) {
		p := &fakePusher{}
		rep, err := jobs.RunPipeline(ctx, s, live, w, nil, p, jobs.PipelineOptions{Push: true, Candidate: live}, logf)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Pushed || rep.Stopped != "canary" {
			t.Fatalf("pipeline = %s stopped at %q, want a stop at canary", steps(rep), rep.Stopped)
		}
		rep, err = jobs.RunPipeline(ctx, s, live, w, nil, p, jobs.PipelineOptions{Push: true, SkipCanary: true, Candidate: live}, logf)
		if err != nil || !rep.Pushed {
			t.Fatalf("with SkipCanary: pipeline = %s stopped at %q (%s), err %v", steps(rep), rep.Stopped, rep.Reason, err)
		}
	})
}
