package jobs

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Labels is the one definition of success the jobs train, calibrate and
// evaluate against. A served request is a success when
//
//	its returned image passed automated QA (the last QA result of the
//	  request in qa_results, else the decision's own qa_pass), and the
//	  request was served (status ok), when RequireQA;
//	no user signal in FailSignals came back for it (default thumbs_down,
//	  regenerate); and
//	where a human scored it, the mean of the reviewers' ReviewScore
//	  answers is at least MinReviewScore (default "overall" >= 3).
//
// The join runs in ClickHouse (see Labels.SQL), never row by row in Go.
type Labels struct {
	RequireQA      bool     `json:"require_qa"`
	FailSignals    []string `json:"fail_signals"`
	ReviewScore    string   `json:"review_score"`
	MinReviewScore float64  `json:"min_review_score"`
}

// DefaultLabels is the documented default definition.
func DefaultLabels() Labels {
	return Labels{RequireQA: true, FailSignals: []string{"thumbs_down", "regenerate"}, ReviewScore: "overall", MinReviewScore: 3}
}

var identLike = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Validate rejects definitions that cannot be put in SQL safely.
func (l Labels) Validate() error {
	for _, s := range l.FailSignals {
		if !identLike.MatchString(s) {
			return fmt.Errorf("label fail signal %q: want letters, digits, _ . -", s)
		}
	}
	if l.ReviewScore != "" && !identLike.MatchString(l.ReviewScore) {
		return fmt.Errorf("label review score %q: want letters, digits, _ . -", l.ReviewScore)
	}
	return nil
}

// Window is a half-open time range [From, To) over event time.
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func (w Window) where(col string) string {
	return fmt.Sprintf("%s >= %d AND %s < %d", col, w.From.UnixMilli(), col, w.To.UnixMilli())
}

// SQL returns a subquery over db's tables yielding one row per decision in
// the window: the expressions in cols (evaluated on the decisions table; an
// expression is referred to by its alias, "expr AS name"), plus y (UInt8,
// 1 = success) and the parts it was built from: qa_ok, bad_signals,
// review_n, review_mean. Signals and reviews are joined from the window's
// start onwards with no end, since they arrive after the request they judge.
//
// 18.16 allows one JOIN per SELECT, so the joins nest; JOIN ... USING keeps
// it portable to current ClickHouse.
func (l Labels) SQL(db string, w Window, cols []string, extraWhere string) string {
	return l.SampleSQL(db, w, cols, extraWhere, "")
}

// SampleSQL is SQL with keyWhere, a condition on request_id alone (a hash
// sample), applied to the decisions and to every joined table, so a sample
// never pays for joining the whole window.
func (l Labels) SampleSQL(db string, w Window, cols []string, extraWhere, keyWhere string) string {
	inner, names := columns(cols, "request_id", "status", "qa_pass")
	where := w.where("ts_ms")
	if extraWhere != "" {
		where += " AND (" + extraWhere + ")"
	}
	since := fmt.Sprintf("ts_ms >= %d", w.From.UnixMilli())
	if keyWhere != "" {
		where += " AND (" + keyWhere + ")"
		since += " AND (" + keyWhere + ")"
	}
	var fail []string
	for _, s := range l.FailSignals {
		fail = append(fail, "'"+s+"'")
	}
	failIn := "0"
	if len(fail) > 0 {
		failIn = "signal IN (" + strings.Join(fail, ", ") + ")"
	}
	qa := "1"
	if l.RequireQA {
		qa = "(status = 'ok' AND if(qa_n > 0, qa_last, qa_pass) = 1)"
	}
	review := "1"
	if l.ReviewScore != "" {
		review = fmt.Sprintf("(review_n = 0 OR review_mean >= %v)", l.MinReviewScore)
	}
	return fmt.Sprintf(`SELECT %[1]s, qa_ok, bad_signals, review_n, review_mean,
  toUInt8(qa_ok = 1 AND bad_signals = 0 AND %[2]s) AS y
FROM (
  SELECT %[1]s, toUInt8(%[3]s) AS qa_ok, bad_signals
  FROM (
    SELECT %[1]s, qa_last, qa_n
    FROM (SELECT %[9]s FROM %[4]s.decisions WHERE %[5]s)
    ANY LEFT JOIN (
      SELECT request_id, argMax(pass, attempt) AS qa_last, count() AS qa_n
      FROM %[4]s.qa_results WHERE %[6]s GROUP BY request_id
    ) USING request_id
  )
  ANY LEFT JOIN (
    SELECT request_id, countIf(%[7]s) AS bad_signals
    FROM %[4]s.signals WHERE %[6]s GROUP BY request_id
  ) USING request_id
)
ANY LEFT JOIN (
  SELECT request_id, count() AS review_n, avg(score_values[indexOf(score_names, '%[8]s')]) AS review_mean
  FROM %[4]s.reviews WHERE %[6]s AND kind = 'score' AND has(score_names, '%[8]s') GROUP BY request_id
) USING request_id`, strings.Join(names, ", "), review, qa, db, where, since, failIn, l.ReviewScore, strings.Join(inner, ", "))
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
