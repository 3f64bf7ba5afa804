package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/routelab/routelab/router"
)

// RecalibrateJob configures jobs recalibrate against ClickHouse.
type RecalibrateJob struct {
	Candidate CandidateOptions
	// RowLimit bounds the decision rows (with candidates) sampled for the
	// rule audit and the threshold search; default 50,000 (the frontier of
	// a tier moves by well under a point between 50k and 200k rows, and
	// reading candidate arrays row by row is the slow part in Go).
	RowLimit int
}

// RunRecalibrate builds a candidate from the live policy's decisions in the
// window: calibration bins aggregated by ClickHouse over every decision, a
// hash sample of rows for the rule audit and thresholds.
func RunRecalibrate(ctx context.Context, s *Store, live *router.Policy, w Window, job RecalibrateJob, progress func(string, ...any)) (*router.Policy, CandidateReport, error) {
	start := time.Now()
	if job.RowLimit <= 0 {
		job.RowLimit = 50000
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

// OPEJob configures jobs ope against ClickHouse.
type OPEJob struct {
	OPE OPEOptions
	// Limit bounds the held-out decisions replayed; default 50,000.
	Limit int
}

// RunOPE evaluates cand on the live policy's held-out logged decisions in
// the window (the fifth recalibration never fits on).
func RunOPE(ctx context.Context, s *Store, cand, live *router.Policy, w Window, job OPEJob, progress func(string, ...any)) (OPEReport, error) {
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
