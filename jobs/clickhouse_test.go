package jobs_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/chsource"
	"github.com/routelab/routelab/jobs/jobstest"
	"github.com/routelab/routelab/router"
)

func TestMain(m *testing.M) { os.Exit(ingesttest.Main(m)) }

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func TestJobsOnClickHouse(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a policy and simulates 30k requests")
	}
	live := jobstest.TrainedPolicy(t)
	db := ingesttest.ClickHouse(t)
	ctx := context.Background()
	end := jobstest.Serve(t, db, live, 7, 30000, t0, false)
	s := &chsource.Store{Conn: db.Conn, DB: db.Database, Labels: jobs.DefaultLabels()}
	w := jobs.Window{From: t0, To: end}
	logf := func(f string, a ...any) { t.Logf(f, a...) }

	cand, rep, err := jobs.RunRecalibrate(ctx, s, live, w, jobs.RecalibrateJob{}, logf)
	if err != nil {
		t.Fatalf("RunRecalibrate: %v", err)
	}
	t.Logf("recalibrate: rows %.0f ece %.4f -> %.4f brier %.4f -> %.4f, candidate %s", rep.Rows, rep.ECEBefore, rep.ECEAfter, rep.BrierBefore, rep.BrierAfter, rep.PolicyVersion)
	if rep.Rows < 25000 || rep.HoldoutRows < 4000 {
		t.Errorf("recalibrate used %.0f rows (%.0f held out), want nearly all of 30000 and a fifth held out", rep.Rows, rep.HoldoutRows)
	}
	if rep.PolicyVersion == "" || rep.PolicyVersion == live.Version || rep.Parent != live.Version || jobs.ParentOf(cand) != live.Version {
		t.Errorf("candidate %q parent %q (from policy %q), want a new version with parent %q", rep.PolicyVersion, rep.Parent, jobs.ParentOf(cand), live.Version)
	}
	if rep.ECEBefore <= 0 || rep.ECEBefore > 0.1 || rep.ECEAfter > rep.ECEBefore+0.02 {
		t.Errorf("ECE before %.4f after %.4f: want a small before and no real loss after on an unchanged world", rep.ECEBefore, rep.ECEAfter)
	}

	orep, err := jobs.RunOPE(ctx, s, live, live, w, jobs.OPEJob{}, logf)
	if err != nil {
		t.Fatalf("RunOPE: %v", err)
	}
	t.Logf("ope live vs itself: n %d ips %+v dr %+v ess %.0f live %.4f", orep.N, orep.IPS, orep.DR, orep.ESS, orep.LiveValue)
	if orep.Refused || orep.N < 4000 {
		t.Fatalf("OPE of the live policy on its own logs: refused %v (%s), n %d", orep.Refused, orep.Reason, orep.N)
	}
	for name, e := range map[string]struct{ v, lo, hi float64 }{"ips": {orep.IPS.Value, orep.IPS.CILow, orep.IPS.CIHigh}, "snips": {orep.SNIPS.Value, orep.SNIPS.CILow, orep.SNIPS.CIHigh}, "dr": {orep.DR.Value, orep.DR.CILow, orep.DR.CIHigh}} {
		if !(e.lo <= orep.LiveValue && orep.LiveValue <= e.hi) {
			t.Errorf("%s interval [%.4f, %.4f] misses the live policy's own observed value %.4f", name, e.lo, e.hi, orep.LiveValue)
		}
	}
	if !orep.Pass {
		t.Errorf("the live policy fails its own OPE gate: %s", orep.Reason)
	}
	crep, err := jobs.RunOPE(ctx, s, cand, live, w, jobs.OPEJob{}, logf)
	if err != nil {
		t.Fatalf("RunOPE(candidate): %v", err)
	}
	t.Logf("ope candidate: dr %.4f [%.4f, %.4f] vs live %.4f ess %.0f pass %v", crep.DR.Value, crep.DR.CILow, crep.DR.CIHigh, crep.LiveValue, crep.ESS, crep.Pass)

	// drift: the second half against the first (no change), then edits only
	half := jobs.Window{From: t0.Add(end.Sub(t0) / 2), To: end}
	dl := *live
	dl.TrainingWindow = &router.TrainingWindow{FromTS: t0.UnixMilli(), ToTS: half.From.UnixMilli()}
	drep, err := jobs.Drift(ctx, s, &dl, half, jobs.DriftConfig{}, logf)
	if err != nil {
		t.Fatalf("Drift: %v", err)
	}
	if drep.Breached {
		t.Errorf("drift on unchanged traffic breached: %v (%+v)", drep.Breaches, drep.Features)
	}
	for _, name := range []string{"prompt_words", "ref_count", "edit_depth", "aspect", "mode", "tier"} {
		if _, ok := drep.Features[name]; !ok {
			t.Errorf("drift report lacks feature %s (unsupported %v)", name, drep.Unsupported)
		}
	}
	if drep.RouteShare == nil || drep.Streams["qa_fail"].Status != "ok" {
		t.Errorf("drift report lacks route share (%v) or the qa_fail stream (%+v)", drep.RouteShare, drep.Streams["qa_fail"])
	}
	shiftEnd := jobstest.Serve(t, db, live, 8, 6000, end, true)
	srep, err := jobs.Drift(ctx, s, &dl, jobs.Window{From: end, To: shiftEnd}, jobs.DriftConfig{}, logf)
	if err != nil {
		t.Fatalf("Drift(shifted): %v", err)
	}
	t.Logf("drift shifted: breaches %v", srep.Breaches)
	if !srep.Breached || !srep.Features["mode"].Breached {
		t.Errorf("drift on edits-only traffic did not breach on mode: %v", srep.Breaches)
	}

	// audit history
	a, err := jobs.NewAudit(time.Now(), "jobs.drift", live.Version, srep)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, a); err != nil {
		t.Fatalf("Audit: %v", err)
	}
	got, err := s.AuditRows(ctx, "jobs.", 10)
	if err != nil || len(got) != 1 || got[0].Subject != live.Version {
		t.Errorf("AuditRows = %+v, %v; want the drift report", got, err)
	}
}

// TestRefitRulesOnlyPolicy: a live policy without a classifier (what
// routelab dev starts with) is refitted from the window, not recalibrated.
func TestRefitRulesOnlyPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 20k requests and trains")
	}
	explore, err := datasets.Policy("explore")
	if err != nil {
		t.Fatal(err)
	}
	db := ingesttest.ClickHouse(t)
	start := time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC)
	end := jobstest.Serve(t, db, explore, 31, 20000, start, false)
	s := &chsource.Store{Conn: db.Conn, DB: db.Database, Labels: jobs.DefaultLabels()}
	cand, rep, err := jobs.RunRecalibrate(context.Background(), s, explore, jobs.Window{From: start, To: end}, jobs.RecalibrateJob{}, func(string, ...any) {})
	if err != nil {
		t.Fatalf("RunRecalibrate: %v", err)
	}
	t.Logf("refit: rows %.0f held out %.0f, ece %.4f -> %.4f, brier %.4f -> %.4f, %s", rep.Rows, rep.HoldoutRows, rep.ECEBefore, rep.ECEAfter, rep.BrierBefore, rep.BrierAfter, rep.PolicyVersion)
	if rep.Mode != "refit" || cand.Classifier == nil || jobs.ParentOf(cand) != explore.Version {
		t.Fatalf("mode %q, classifier %v, parent %q: want a refit with a classifier and parent %s", rep.Mode, cand.Classifier != nil, jobs.ParentOf(cand), explore.Version)
	}
	if !(rep.ECEBefore > 0.5 && rep.ECEAfter < 0.05) {
		t.Errorf("ECE %.4f -> %.4f: want the no-prediction policy's large error, then a calibrated one", rep.ECEBefore, rep.ECEAfter)
	}

	// drift for a policy without reference distributions: the window's
	// first quarter is the reference, every feature is checked, nothing
	// breaches on unchanged traffic
	drep, err := jobs.Drift(context.Background(), s, explore, jobs.Window{From: start, To: end}, jobs.DriftConfig{}, func(string, ...any) {})
	if err != nil {
		t.Fatalf("Drift: %v", err)
	}
	if !strings.HasPrefix(drep.Reference, "window baseline") || len(drep.Features) < 6 || drep.Breached {
		t.Errorf("drift without a reference: %q, %d features, breached %v %v", drep.Reference, len(drep.Features), drep.Breached, drep.Breaches)
	}
	for name, c := range drep.Features {
		if c.Status != "ok" {
			t.Errorf("feature %s status %s (n_ref %.0f n_cur %.0f), want ok", name, c.Status, c.NRef, c.NCur)
		}
	}
}
