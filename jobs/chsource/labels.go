package chsource

import (
	"fmt"
	"strings"

	"github.com/routelab/routelab/jobs"
)

// SQL is l, the jobs' definition of success, as a subquery over db's
// tables yielding one row per decision in the window: the expressions in cols (evaluated on the decisions table; an
// expression is referred to by its alias, "expr AS name"), plus y (UInt8,
// 1 = success) and the parts it was built from: qa_ok, bad_signals,
// reviewed, review_low. Signals and reviews count from the window's start
// onwards with no end, since they arrive after the request they judge.
//
// The other tables are not joined row to row: each contributes a set of
// request keys (cityHash64(request_id)) that the single scan of decisions
// tests with IN: requests with a failing signal, requests whose mean review
// is low, requests whose last QA result failed (grouped only over requests
// with any failed QA result). A set lookup is far cheaper than a hash join
// with per-request aggregation, and it runs on 18.16 and current releases.
func SQL(l jobs.Labels, db string, w jobs.Window, cols []string, extraWhere string) string {
	return SampleSQL(l, db, w, cols, extraWhere, "")
}

// SampleSQL is SQL with keyWhere, a condition on request_id alone (a hash
// sample), applied to the decisions and to every other table, so a sample
// never pays for the whole window.
func SampleSQL(l jobs.Labels, db string, w jobs.Window, cols []string, extraWhere, keyWhere string) string {
	inner, names := columns(cols, "request_id", "status", "qa_pass")
	cond := where(w, "ts_ms") + " AND " + liveOnly
	if extraWhere != "" {
		cond += " AND (" + extraWhere + ")"
	}
	since := fmt.Sprintf("ts_ms >= %d", w.From.UnixMilli())
	if keyWhere != "" {
		cond += " AND (" + keyWhere + ")"
		since += " AND (" + keyWhere + ")"
	}
	qa := "toUInt8(1)"
	if l.RequireQA {
		qa = fmt.Sprintf(`toUInt8(status = 'ok' AND qa_pass = 1 AND NOT (cityHash64(request_id) IN (
      SELECT rk FROM (
        SELECT cityHash64(request_id) AS rk, pass, attempt FROM %[1]s.qa_results
        WHERE %[2]s AND cityHash64(request_id) IN (SELECT cityHash64(request_id) FROM %[1]s.qa_results WHERE %[2]s AND pass = 0)
      ) GROUP BY rk HAVING argMax(pass, attempt) = 0)))`, db, since)
	}
	bad := "toUInt8(0)"
	if len(l.FailSignals) > 0 {
		var fail []string
		for _, s := range l.FailSignals {
			fail = append(fail, "'"+s+"'")
		}
		bad = fmt.Sprintf("toUInt8(cityHash64(request_id) IN (SELECT cityHash64(request_id) FROM %s.signals WHERE %s AND signal IN (%s)))", db, since, strings.Join(fail, ", "))
	}
	reviewed, low := "toUInt8(0)", "toUInt8(0)"
	if l.ReviewScore != "" {
		rv := fmt.Sprintf("%s.reviews WHERE %s AND kind = 'score' AND has(score_names, '%s')", db, since, l.ReviewScore)
		reviewed = fmt.Sprintf("toUInt8(cityHash64(request_id) IN (SELECT cityHash64(request_id) FROM %s))", rv)
		low = fmt.Sprintf("toUInt8(cityHash64(request_id) IN (SELECT rk FROM (SELECT cityHash64(request_id) AS rk, score_values[indexOf(score_names, '%s')] AS v FROM %s) GROUP BY rk HAVING avg(v) < %v))",
			l.ReviewScore, rv, l.MinReviewScore)
	}
	return fmt.Sprintf(`SELECT %[1]s, qa_ok, bad_signals, reviewed, review_low,
  toUInt8(qa_ok = 1 AND bad_signals = 0 AND review_low = 0) AS y
FROM (
  SELECT %[2]s, %[3]s AS qa_ok, %[4]s AS bad_signals, %[5]s AS reviewed, %[6]s AS review_low
  FROM %[7]s.decisions WHERE %[8]s
)`, strings.Join(names, ", "), strings.Join(inner, ", "), qa, bad, reviewed, low, db, cond)
}

// columns returns the select list for the innermost query (the expressions
// plus any required column not already there) and the output names.
func columns(cols []string, required ...string) (exprs, names []string) {
	seen := map[string]bool{}
	for _, c := range cols {
		name := c
		if i := strings.LastIndex(strings.ToUpper(c), " AS "); i >= 0 {
			name = strings.TrimSpace(c[i+4:])
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		exprs = append(exprs, c)
		names = append(names, name)
	}
	for _, r := range required {
		if !seen[r] {
			seen[r] = true
			exprs = append(exprs, r)
			names = append(names, r)
		}
	}
	return exprs, names
}
