package jobs

import (
	"context"
	"time"
)

// The jobs read logged outcomes through these interfaces, in the jobs'
// own terms (bins, rows, counts, profiles, rates); where they come from is
// an adapter's business. jobs/chsource reads the ClickHouse event tables
// and pushes every aggregate into ClickHouse; jobs/memsource holds events
// in memory, for the lab and tests. Every method returns an error only
// when the source could not be read; an empty window is an empty answer.
//
// Labelled decisions, the ones calibration, thresholds, rule audit, refit
// and OPE learn from, are the decisions of one policy version in the
// window with a positive propensity whose first attempt says something
// about the routed model (it returned an image, judged by QA, or ran out
// of time; provider errors and rate limits say nothing). The routed model
// is the first attempt's, the one the logged propensity and candidate P
// belong to; its label is the request's success under Labels when its own
// image was served, else a failure. The held-out fifth is decided by a
// hash of the request id (HoldoutMod).

// LoggedSource reads labelled decisions for replay (OPE, refit).
type LoggedSource interface {
	// Logged returns up to limit labelled decisions of policyVersion in w
	// in time order, a deterministic hash sample of the request ids when
	// there are more (limit <= 0: all); holdoutOnly keeps the held-out
	// fifth.
	Logged(ctx context.Context, w Window, policyVersion string, limit int, holdoutOnly bool) ([]Logged, error)
}

// CalibrationSource is what recalibration reads.
type CalibrationSource interface {
	LoggedSource
	// CalibrationBins aggregates every labelled decision of policyVersion
	// in w into fine bins (100 per model, by the routed model's logged P),
	// split into fit and held-out rows, inverse-propensity weighted.
	CalibrationBins(ctx context.Context, w Window, policyVersion string) ([]CalBin, error)
	// Rows returns up to limit labelled decisions of policyVersion in w
	// with the candidates they were chosen among (a deterministic hash
	// sample when there are more): what the rule audit and the threshold
	// search replay.
	Rows(ctx context.Context, w Window, policyVersion string, limit int) ([]Row, error)
}

// DriftSource is what the drift check reads. It counts every decision in
// the window, labelled or not, of any policy unless one is named.
type DriftSource interface {
	// Count is the number of decisions in w, of policyVersion unless "".
	Count(ctx context.Context, w Window, policyVersion string) (uint64, error)
	// RouteCounts counts policyVersion's decisions before t by the model
	// that served them (the "model" feature).
	RouteCounts(ctx context.Context, policyVersion string, before time.Time) (map[string]float64, error)
	// EventCut is the time before which about frac of w's decisions fall.
	EventCut(ctx context.Context, w Window, frac float64) (time.Time, error)
	// Profile counts the features of spec over w's decisions, split into
	// those before cut and the rest (a zero cut puts everything in late).
	Profile(ctx context.Context, w Window, spec ProfileSpec, cut time.Time) (early, late ProfileCounts, err error)
	// Rates aggregates w into buckets of step, in time order (buckets
	// without decisions are left out): see RateBucket.
	Rates(ctx context.Context, w Window, step time.Duration) ([]RateBucket, error)
}

// Source is everything the jobs read: what RunPipeline takes.
type Source interface {
	CalibrationSource
	DriftSource
}
