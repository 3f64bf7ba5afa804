package ingest

import (
	"time"

	"github.com/routelab/routelab/events"
)

// The column lists below are the single source of the mapping from event
// fields to table columns; migrations/ must create the same columns.

func headerCols[T any](h func(*T) *events.Header) []column[T] {
	return []column[T]{
		mk("event_id", func(e *T) string { return h(e).EventID }),
		mk("schema_version", func(e *T) uint16 { return uint16(h(e).SchemaVersion) }),
		mk("request_id", func(e *T) string { return h(e).RequestID }),
		mk("tenant", func(e *T) string { return h(e).Tenant }),
		mk("ts", func(e *T) time.Time { return secondsUTC(h(e).TS) }),
		mk("ts_ms", func(e *T) uint64 { return uint64(h(e).TS) }),
	}
}

func decisionColumns() []column[events.Decision] {
	type D = events.Decision
	cols := headerCols(func(d *D) *events.Header { return &d.Header })
	return append(cols,
		mk("unit", func(d *D) string { return d.Unit }),
		mk("mode", func(d *D) string { return d.Mode }),
		mk("tier", func(d *D) string { return d.Tier }),
		mk("prompt", func(d *D) string { return d.Prompt }),
		mk("parent_id", func(d *D) string { return d.ParentID }),
		mk("model", func(d *D) string { return d.Model }),
		mk("provider", func(d *D) string { return d.Provider }),
		mk("policy_version", func(d *D) string { return d.PolicyVersion }),
		mk("rule", func(d *D) string { return d.Rule }),
		mk("propensity", func(d *D) float64 { return d.Propensity }),
		mk("explored", func(d *D) uint8 { return b2u(d.Explored) }),
		mk("reset", func(d *D) uint8 { return b2u(d.Reset) }),
		mk("escalated", func(d *D) uint8 { return b2u(d.Escalated) }),
		mk("fallback", func(d *D) uint8 { return b2u(d.Fallback) }),
		mk("status", func(d *D) string { return d.Status }),
		mk("error_code", func(d *D) string { return d.ErrorCode }),
		mk("qa_pass", func(d *D) uint8 { return b2u(d.QAPass) }),
		mk("latency_ms", func(d *D) int64 { return d.LatencyMS }),
		mk("cost_usd", func(d *D) float64 { return d.CostUSD }),
		mk("images", func(d *D) uint16 { return uint16(d.Images) }),
		mk("sampled", func(d *D) uint8 { return b2u(d.Sampled) }),
		mk("blob_key", func(d *D) string { return d.BlobKey }),
		mk("ref_keys", func(d *D) []string { return nonNil(d.RefKeys) }),
		mk("prompt_len", func(d *D) uint32 { return uint32(d.Features.PromptLen) }),
		mk("ref_count", func(d *D) uint16 { return uint16(d.Features.RefCount) }),
		mk("edit_depth", func(d *D) uint16 { return uint16(d.Features.EditDepth) }),
		mk("aspect", func(d *D) float64 { return d.Features.Aspect }),
		mk("text_heavy", func(d *D) uint8 { return b2u(d.Features.TextHeavy) }),
		mk("preserve_subject", func(d *D) uint8 { return b2u(d.Features.Preserve) }),
		mk("keywords", func(d *D) []string { return nonNil(d.Features.Keywords) }),
		mk("max_latency_ms", func(d *D) int64 { return d.Features.MaxLatency }),
		mk("max_cost_usd", func(d *D) float64 { return d.Features.MaxCostUSD }),
		mk("hashed_grams", func(d *D) []uint32 { return nonNil(d.Features.HashedGrams) }),
		mk("candidate_models", func(d *D) []string { return each(d.Candidates, func(c events.Candidate) string { return c.Model }) }),
		mk("candidate_p", func(d *D) []float64 { return each(d.Candidates, func(c events.Candidate) float64 { return c.P }) }),
		mk("candidate_cost_usd", func(d *D) []float64 { return each(d.Candidates, func(c events.Candidate) float64 { return c.CostUSD }) }),
		mk("candidate_eligible", func(d *D) []uint8 {
			return each(d.Candidates, func(c events.Candidate) uint8 { return b2u(c.Eligible) })
		}),
		mk("candidate_reasons", func(d *D) []string { return each(d.Candidates, func(c events.Candidate) string { return c.Reason }) }),
		mk("arm_experiments", func(d *D) []string { return each(d.Arms, func(a events.Arm) string { return a.Experiment }) }),
		mk("arm_names", func(d *D) []string { return each(d.Arms, func(a events.Arm) string { return a.Arm }) }),
		mk("arm_layers", func(d *D) []string { return each(d.Arms, func(a events.Arm) string { return a.Layer }) }),
		mk("arm_phases", func(d *D) []int32 { return each(d.Arms, func(a events.Arm) int32 { return int32(a.Phase) }) }),
		mk("arm_units", func(d *D) []string { return each(d.Arms, func(a events.Arm) string { return a.Unit }) }),
		mk("arm_buckets", func(d *D) []int32 { return each(d.Arms, func(a events.Arm) int32 { return int32(a.Bucket) }) }),
		mk("arm_propensities", func(d *D) []float64 { return each(d.Arms, func(a events.Arm) float64 { return a.Propensity }) }),
		mk("arm_strata", func(d *D) []string { return each(d.Arms, func(a events.Arm) string { return a.Stratum }) }),
		mk("attempt_models", func(d *D) []string { return each(d.Attempts, func(a events.Attempt) string { return a.Model }) }),
		mk("attempt_providers", func(d *D) []string { return each(d.Attempts, func(a events.Attempt) string { return a.Provider }) }),
		mk("attempt_statuses", func(d *D) []string { return each(d.Attempts, func(a events.Attempt) string { return a.Status }) }),
		mk("attempt_latency_ms", func(d *D) []int64 { return each(d.Attempts, func(a events.Attempt) int64 { return a.LatencyMS }) }),
		mk("attempt_cost_usd", func(d *D) []float64 { return each(d.Attempts, func(a events.Attempt) float64 { return a.CostUSD }) }),
		mk("attempt_errors", func(d *D) []string { return each(d.Attempts, func(a events.Attempt) string { return a.Error }) }),
		mk("shadow", func(d *D) uint8 { return b2u(d.Shadow) }),
		mk("live_request_id", func(d *D) string { return d.LiveRequestID }),
		mk("sample_rate", func(d *D) float64 { return d.SampleRate }),
		mk("attempt_cost_sources", func(d *D) []string { return each(d.Attempts, func(a events.Attempt) string { return a.CostSource }) }),
	)
}

func qaColumns() []column[events.QAResult] {
	type Q = events.QAResult
	cols := headerCols(func(q *Q) *events.Header { return &q.Header })
	return append(cols,
		mk("model", func(q *Q) string { return q.Model }),
		mk("attempt", func(q *Q) int32 { return int32(q.Attempt) }),
		mk("pass", func(q *Q) uint8 { return b2u(q.Pass) }),
		mk("score", func(q *Q) float64 { return q.Score }),
		mk("check_names", func(q *Q) []string { return each(q.Checks, func(c events.QACheck) string { return c.Name }) }),
		mk("check_pass", func(q *Q) []uint8 { return each(q.Checks, func(c events.QACheck) uint8 { return b2u(c.Pass) }) }),
		mk("check_values", func(q *Q) []float64 { return each(q.Checks, func(c events.QACheck) float64 { return c.Value }) }),
		mk("reason", func(q *Q) string { return q.Reason }),
		mk("shadow", func(q *Q) uint8 { return b2u(q.Shadow) }),
		mk("live_request_id", func(q *Q) string { return q.LiveRequestID }),
		mk("ocr_text", func(q *Q) string { return q.OCRText }),
	)
}

func signalColumns() []column[events.Signal] {
	type S = events.Signal
	cols := headerCols(func(s *S) *events.Header { return &s.Header })
	return append(cols,
		mk("signal", func(s *S) string { return s.Signal }),
		mk("value", func(s *S) float64 { return s.Value }),
		mk("comment", func(s *S) string { return s.Comment }),
		mk("user", func(s *S) string { return s.User }),
	)
}

func reviewColumns() []column[events.Review] {
	type R = events.Review
	cols := headerCols(func(r *R) *events.Header { return &r.Header })
	return append(cols,
		mk("kind", func(r *R) string { return r.Kind }),
		mk("reviewer", func(r *R) string { return r.Reviewer }),
		mk("rubric", func(r *R) string { return r.Rubric }),
		mk("model", func(r *R) string { return r.Model }),
		mk("arm", func(r *R) string { return r.Arm }),
		mk("score_names", func(r *R) []string { return each(r.Scores, func(s events.Score) string { return s.Name }) }),
		mk("score_values", func(r *R) []float64 { return each(r.Scores, func(s events.Score) float64 { return s.Value }) }),
		mk("overlap", func(r *R) uint8 { return b2u(r.Overlap) }),
		mk("other_request_id", func(r *R) string { return r.OtherRequestID }),
		mk("other_model", func(r *R) string { return r.OtherModel }),
		mk("preference", func(r *R) string { return r.Preference }),
		mk("comment", func(r *R) string { return r.Comment }),
	)
}

func auditColumns() []column[events.Audit] {
	type A = events.Audit
	cols := headerCols(func(a *A) *events.Header { return &a.Header })
	return append(cols,
		mk("action", func(a *A) string { return a.Action }),
		mk("subject", func(a *A) string { return a.Subject }),
		mk("actor", func(a *A) string { return a.Actor }),
		mk("body", func(a *A) string { return a.Body }),
	)
}

// each maps a slice, never returning nil (an Array column needs a value).
func each[S, V any](s []S, f func(S) V) []V {
	out := make([]V, len(s))
	for i := range s {
		out[i] = f(s[i])
	}
	return out
}
