package review_test

import (
	"math"
	"testing"
	"time"

	"github.com/routelab/routelab/evaluator/review"
)

func TestAgree(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	var recs []review.ScoreRecord
	add := func(r, item string, v float64, sec int) {
		recs = append(recs, review.ScoreRecord{Reviewer: r, Item: item, Value: v, At: t0.Add(time.Duration(sec) * time.Second)})
	}
	// ann and bea agree on every item; cid is one off on item 3.
	for i, v := range []float64{1, 2, 3, 4, 5, 3} {
		item := string(rune('a' + i))
		add("ann", item, v, 30*i)
		add("bea", item, v, 40*i)
		c := v
		if i == 3 {
			c = v - 1
		}
		add("cid", item, c, 60*i)
	}
	ag := review.Agree(recs, review.Interval, 3)
	if ag.AlphaItems != 6 || ag.Alpha <= 0.9 || ag.Alpha >= 1 {
		t.Errorf("alpha = %.3f over %d items, want in (0.9, 1) over 6", ag.Alpha, ag.AlphaItems)
	}
	if len(ag.Pairs) != 3 {
		t.Fatalf("pairs = %+v, want 3", ag.Pairs)
	}
	for _, p := range ag.Pairs {
		if p.A == "ann" && p.B == "bea" && p.Kappa != 1 {
			t.Errorf("kappa(ann, bea) = %v, want 1", p.Kappa)
		}
	}
	for _, r := range ag.Reviewers {
		switch r.Reviewer {
		case "ann":
			if r.Items != 6 || r.MedianSecs != 30 || r.PerHour != 120 {
				t.Errorf("ann = %+v, want 6 items, 30 s median, 120/h", r)
			}
			// others on item d: bea 4, cid 3 -> median 3.5; ann 4 is off by 0.5.
			if r.ConsensusN != 6 || math.Abs(r.ConsensusExact-5.0/6) > 1e-9 || math.Abs(r.ConsensusMAE-0.5/6) > 1e-9 {
				t.Errorf("ann consensus = %d %.3f %.3f, want 6, 5/6, 0.5/6", r.ConsensusN, r.ConsensusExact, r.ConsensusMAE)
			}
		case "cid":
			if math.Abs(r.ConsensusExact-5.0/6) > 1e-9 || math.Abs(r.ConsensusMAE-1.0/6) > 1e-9 {
				t.Errorf("cid consensus = %.3f %.3f, want 5/6, 1/6", r.ConsensusExact, r.ConsensusMAE)
			}
		}
	}
}

func TestCompareQA(t *testing.T) {
	qa := []bool{true, true, false, false, true}
	human := []float64{4, 2, 1, 5, 3}
	q := review.CompareQA(qa, human, 3)
	if q.BothPass != 2 || q.QAPassHumanFail != 1 || q.BothFail != 1 || q.QAFailHumanPass != 1 {
		t.Errorf("CompareQA = %+v", q)
	}
	if math.Abs(q.Agreement-0.6) > 1e-9 {
		t.Errorf("agreement = %v, want 0.6", q.Agreement)
	}
}
