package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/routelab/routelab/router"
)

// RecalibrateJob configures jobs recalibrate.
type RecalibrateJob struct {
	Candidate CandidateOptions
	// Refit trains a new classifier (router.Train, inverse-propensity
	// weighted) on the window instead of recalibrating the live one; it is
	// what happens anyway when the live policy has no classifier.
	Refit bool
	// RefitLimit bounds the decisions read for a refit; default 200,000.
	RefitLimit int
	// Epsilon of the candidate; default the live policy's (for a refit:
	// else 0.1). A recalibration takes it unless Candidate.Epsilon is set.
	Epsilon float64
	// RowLimit bounds the decision rows (with candidates) sampled for the
	// rule audit and the threshold search; default 50,000 (the frontier of
	// a tier moves by well under a point between 50k and 200k rows, and
	// reading candidate arrays row by row is the slow part in Go).
	RowLimit int
}

// RunRecalibrate builds a candidate from the live policy's decisions in the
// window: calibration bins aggregated by the source over every labelled
// decision, a hash sample of rows for the rule audit and thresholds.
func RunRecalibrate(ctx context.Context, s CalibrationSource, live *router.Policy, w Window, job RecalibrateJob, progress func(string, ...any)) (*router.Policy, CandidateReport, error) {
	start := time.Now()
	if job.RowLimit <= 0 {
		job.RowLimit = 50000
	}
	if job.Refit || live.Classifier == nil {
		return runRefit(ctx, s, live, w, job, progress)
	}
	if job.Candidate.Epsilon <= 0 {
		job.Candidate.Epsilon = job.Epsilon
	}
	bins, err := s.CalibrationBins(ctx, w, live.Version)
	if err != nil {
		return nil, CandidateReport{}, err
	}
	var n float64
	for _, b := range bins {
		n += b.N
	}
	progress("recalibrate: %.0f labelled decisions of %s aggregated into %d bins in %s", n, live.Version, len(bins), time.Since(start).Round(time.Millisecond))
	if n == 0 {
		return nil, CandidateReport{}, fmt.Errorf("no labelled decisions of policy %s in %s .. %s", live.Version, w.From.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339))
	}
	t := time.Now()
	rows, err := s.Rows(ctx, w, live.Version, job.RowLimit)
	if err != nil {
		return nil, CandidateReport{}, err
	}
	progress("recalibrate: %d rows sampled for the rule audit and thresholds in %s", len(rows), time.Since(t).Round(time.Millisecond))
	cand, rep, err := BuildCandidate(live, bins, rows, w, job.Candidate)
	rep.ElapsedMS = since(start)
	return cand, rep, err
}

// OPEJob configures jobs ope.
type OPEJob struct {
	OPE OPEOptions
	// Limit bounds the held-out decisions replayed; default 50,000.
	Limit int
}

// RunOPE evaluates cand on the live policy's held-out logged decisions in
// the window (the fifth recalibration never fits on).
func RunOPE(ctx context.Context, s LoggedSource, cand, live *router.Policy, w Window, job OPEJob, progress func(string, ...any)) (OPEReport, error) {
	start := time.Now()
	if job.Limit <= 0 {
		job.Limit = 50000
	}
	logged, err := s.Logged(ctx, w, live.Version, job.Limit, true)
	if err != nil {
		return OPEReport{}, err
	}
	progress("ope: replaying %d held-out decisions of %s under %s", len(logged), live.Version, cand.Version)
	rep := EvaluateCandidate(logged, cand, live, w, job.OPE)
	rep.ElapsedMS = since(start)
	return rep, nil
}

// runRefit trains a candidate with router.Train on the window's labelled
// decisions (the fit four fifths), and measures ECE/Brier of the live
// policy's logged P and of the candidate's P for the routed model on the
// held-out fifth (a policy without a classifier logs P = 0, so its "before"
// is the plain success rate: it predicts nothing).
func runRefit(ctx context.Context, s LoggedSource, live *router.Policy, w Window, job RecalibrateJob, progress func(string, ...any)) (*router.Policy, CandidateReport, error) {
	start := time.Now()
	if job.RefitLimit <= 0 {
		job.RefitLimit = 200000
	}
	rep := CandidateReport{RecalReport: RecalReport{Job: "recalibrate", Mode: "refit", Parent: live.Version, Window: w}, DroppedRules: []string{}}
	logged, err := s.Logged(ctx, w, live.Version, job.RefitLimit, false)
	if err != nil {
		return nil, rep, err
	}
	progress("recalibrate (refit): %d labelled decisions of %s read in %s", len(logged), live.Version, time.Since(start).Round(time.Millisecond))
	var ex []router.Example
	var hold []Logged
	for _, l := range logged {
		if l.Holdout {
			hold = append(hold, l)
			continue
		}
		ex = append(ex, router.Example{Req: l.Replay(live), Model: l.Model, Propensity: l.Propensity, Success: l.Y == 1, TS: l.TS})
	}
	eps := job.Epsilon
	if eps <= 0 {
		eps = live.Epsilon
	}
	if eps <= 0 || eps > 0.3 {
		eps = 0.1
	}
	cand, err := router.Train(ex, router.TrainConfig{Name: live.Name, Models: live.Models, DefaultModel: live.DefaultModel, Rules: live.Rules,
		Epsilon: eps, Source: "recalibrate:" + live.Version, Progress: progress})
	if err != nil {
		return nil, rep, fmt.Errorf("refit on %d examples: %w", len(ex), err)
	}
	cand.TrainingWindow = &router.TrainingWindow{FromTS: w.From.UnixMilli(), ToTS: w.To.UnixMilli(), Events: len(ex), Source: "recalibrate:" + live.Version}
	cand.Version, cand.Checksum = "", ""
	if err := cand.Seal(); err != nil {
		return nil, rep, err
	}
	var before, after []Row
	for _, l := range hold {
		d := router.Decide(l.Replay(live), cand, nil)
		var p float64
		for _, c := range d.Candidates {
			if c.Model == l.Model {
				p = c.P
			}
		}
		before = append(before, Row{ID: l.RequestID, Model: l.Model, Propensity: l.Propensity, Y: l.Y, Cands: []Cand{{Model: l.Model, P: l.PolicyP}}, HoldoutSet: true, HoldoutVal: true})
		after = append(after, Row{ID: l.RequestID, Model: l.Model, Propensity: l.Propensity, Y: l.Y, Cands: []Cand{{Model: l.Model, P: p}}, HoldoutSet: true, HoldoutVal: true})
	}
	b, a := Evaluate(BinsFromRows(before), nil), Evaluate(BinsFromRows(after), nil)
	rep.Rows, rep.HoldoutRows = float64(len(logged)), float64(len(hold))
	rep.ECEBefore, rep.BrierBefore, rep.ECEAfter, rep.BrierAfter = b.ECE, b.Brier, a.ECE, a.Brier
	if live.Classifier == nil {
		rep.Note = live.Version + " has no classifier: it logs P = 0, so ece_before and brier_before are those of predicting 0 (the held-out success rate)"
	}
	rep.PolicyVersion, rep.Thresholds = cand.Version, cand.Thresholds
	if cand.Metrics != nil {
		rep.Rules = cand.Metrics.RuleAudit
		rep.Frontier = cand.Metrics.Frontier
	}
	for _, r := range rep.Rules {
		if !r.Kept {
			rep.DroppedRules = append(rep.DroppedRules, r.Rule)
		}
	}
	rep.ElapsedMS = since(start)
	return cand, rep, nil
}
