// Package chsource is the ClickHouse adapter of the offline jobs: it reads
// the event tables ingest writes (decisions, qa_results, signals, reviews)
// as jobs.Source and writes the jobs' audit rows. Every aggregate is pushed
// into ClickHouse; Go receives bins and counts, and rows only where a job
// replays them (a hash sample). Files by concern: labels.go (the success
// definition as SQL), calibration.go (calibration bins, rows, logged
// decisions), counts.go (counts and the window cut), profiles.go (feature
// profiles for drift), rates.go (outcome rates), audit.go.
package chsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/routelab/routelab/jobs"
)

var _ jobs.Source = (*Store)(nil)

// Store reads the event tables of database DB for the jobs and writes their
// audit rows.
type Store struct {
	Conn   driver.Conn
	DB     string
	Labels jobs.Labels
	// Final adds FINAL to reads of the decisions table so redelivered
	// events are collapsed at read time; off by default because the
	// aggregates the jobs compute move by at most the duplicate rate, and
	// FINAL on tens of millions of rows multiplies the query time.
	Final bool
}

func (s *Store) decisions() string {
	final := ""
	if s.Final {
		final = " FINAL"
	}
	return "(SELECT * FROM " + s.DB + ".decisions" + final + " WHERE " + liveOnly + ")"
}

// liveOnly keeps the decisions that served a user: a shadow experiment's
// mirrors (shadow = 1) were never shown to anyone, so they are not the live
// policy's traffic, outcomes or labels.
const liveOnly = "shadow = 0"

// quote makes a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// where is the condition of a window on a millisecond time column.
func where(w jobs.Window, col string) string {
	return fmt.Sprintf("%s >= %d AND %s < %d", col, w.From.UnixMilli(), col, w.To.UnixMilli())
}

// routedExpr is the model the policy routed to (the first attempt's), which
// the logged propensity and candidate P belong to; model is the one whose
// image came back, a fallback when the first attempt failed.
const routedExpr = "if(empty(attempt_models), model, attempt_models[1]) AS routed"

// labelledFirst keeps decisions whose first attempt says something about
// the routed model's quality: it returned an image (judged by QA) or ran
// out of time. Provider errors and rate limits say nothing and are left out.
const labelledFirst = "(empty(attempt_statuses) OR attempt_statuses[1] IN ('ok', 'qa_fail', 'timeout'))"

// routedY is the label of the routed model: the request's success when
// the routed model's own image came back, else a failure.
const routedY = "toUInt8(y = 1 AND routed = model)"

// holdoutExpr is jobs.Holdout in SQL.
var holdoutExpr = fmt.Sprintf("toUInt8(cityHash64(request_id) %% %d = 0) AS holdout", jobs.HoldoutMod)

// labelled is the labels subquery over the decisions of s (FINAL when
// asked) with cols, restricted to where and the sample condition key.
func (s *Store) labelled(w jobs.Window, cols []string, extraWhere, key string) string {
	lab := SampleSQL(s.Labels, s.DB, w, cols, extraWhere, key)
	return strings.Replace(lab, "FROM "+s.DB+".decisions WHERE", "FROM "+s.decisions()+" WHERE", 1)
}

// sample returns a condition on request_id keeping about limit of the
// policy's decisions in the window (a cityHash64 fraction, so the sample is
// reproducible and the joined tables can be cut by the same condition);
// holdoutOnly keeps only the held-out fifth.
func (s *Store) sample(ctx context.Context, w jobs.Window, policyVersion string, limit int, holdoutOnly bool) (string, error) {
	var conds []string
	frac := 1.0
	if holdoutOnly {
		conds = append(conds, fmt.Sprintf("cityHash64(request_id) %% %d = 0", jobs.HoldoutMod))
		frac = 1.0 / jobs.HoldoutMod
	}
	if limit > 0 {
		n, err := s.Count(ctx, w, policyVersion)
		if err != nil {
			return "", err
		}
		if float64(n)*frac > float64(limit) {
			// a second, independent hash so it does not interact with the split
			keep := uint64(float64(limit) / (float64(n) * frac) * 1e6)
			conds = append(conds, fmt.Sprintf("cityHash64(request_id, 'sample') %% 1000000 < %d", keep))
		}
	}
	return strings.Join(conds, " AND "), nil
}
