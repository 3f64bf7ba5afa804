package jobs

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/routelab/routelab/events"
)

// Labels is the one definition of success the jobs train, calibrate and
// evaluate against. A served request is a success when
//
//	it was served (status ok) and its returned image passed automated QA
//	  (the decision's qa_pass, unless the request's last QA result in
//	  qa_results failed), when RequireQA;
//	no user signal in FailSignals came back for it (default thumbs_down,
//	  regenerate); and
//	where a human scored it, the mean of the reviewers' ReviewScore
//	  answers is at least MinReviewScore (default "overall" >= 3).
//
// jobs/chsource joins it in ClickHouse (chsource.SQL); jobs/memsource
// evaluates it per request (Labels.Success).
type Labels struct {
	RequireQA      bool     `json:"require_qa"`
	FailSignals    []string `json:"fail_signals"`
	ReviewScore    string   `json:"review_score"`
	MinReviewScore float64  `json:"min_review_score"`
}

// DefaultLabels is the documented default definition.
func DefaultLabels() Labels {
	return Labels{RequireQA: true, FailSignals: slices.Clone(events.DefaultFailSignals), ReviewScore: "overall", MinReviewScore: 3}
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

// Success is l for one request, evaluated in process the way chsource.SQL
// evaluates it in ClickHouse: d is the request's decision; qa, signals and
// reviews are the request's other events received from the window's start
// on, in any order.
func (l Labels) Success(d *events.Decision, qa []events.QAResult, signals []events.Signal, reviews []events.Review) bool {
	if l.RequireQA {
		if d.Status != "ok" || !d.QAPass {
			return false
		}
		last := -1
		lastPass := true
		for i := range qa {
			if qa[i].Attempt >= last {
				last, lastPass = qa[i].Attempt, qa[i].Pass
			}
		}
		if !lastPass {
			return false
		}
	}
	for i := range signals {
		if slices.Contains(l.FailSignals, signals[i].Signal) {
			return false
		}
	}
	if l.ReviewScore == "" {
		return true
	}
	var sum, n float64
	for i := range reviews {
		if reviews[i].Kind != "score" {
			continue
		}
		for _, sc := range reviews[i].Scores {
			if sc.Name == l.ReviewScore {
				sum += sc.Value
				n++
				break
			}
		}
	}
	return n == 0 || sum/n >= l.MinReviewScore
}

// Window is a half-open time range [From, To) over event time.
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}
