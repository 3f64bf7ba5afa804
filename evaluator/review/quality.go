package review

import (
	"math"
	"sort"
	"strconv"
	"time"

	"gonum.org/v1/gonum/stat"
)

// ScoreRecord is one reviewer's value for one item on one question.
type ScoreRecord struct {
	Reviewer string
	Item     string
	Value    float64
	At       time.Time
}

// ReviewerStats is how one reviewer works: volume, pace, and agreement with
// the consensus of the others on items several people scored.
type ReviewerStats struct {
	Reviewer string
	Items    int
	// MedianSecs is the median gap between consecutive submissions, gaps
	// over 10 minutes (breaks) excluded; PerHour is 3600/MedianSecs.
	MedianSecs, PerHour float64
	// On items at least two others scored: how many, the share where this
	// reviewer equals the others' median, and the mean absolute difference.
	ConsensusN     int
	ConsensusExact float64
	ConsensusMAE   float64
}

// PairKappa is Cohen's kappa between two reviewers on their common items.
type PairKappa struct {
	A, B  string
	N     int
	Kappa float64
}

// Agreement summarises reviewer agreement on one question.
type Agreement struct {
	Alpha      float64 // Krippendorff's alpha over every item with 2+ ratings
	AlphaItems int
	Pairs      []PairKappa // pairs with at least minPair common items
	Reviewers  []ReviewerStats
}

// Agree computes agreement and per-reviewer statistics. metric is the
// scale for alpha; minPair the fewest common items for a pairwise kappa.
func Agree(recs []ScoreRecord, metric Metric, minPair int) Agreement {
	byItem := map[string]map[string]float64{}
	byReviewer := map[string][]ScoreRecord{}
	for _, r := range recs {
		if byItem[r.Item] == nil {
			byItem[r.Item] = map[string]float64{}
		}
		byItem[r.Item][r.Reviewer] = r.Value
		byReviewer[r.Reviewer] = append(byReviewer[r.Reviewer], r)
	}
	reviewers := make([]string, 0, len(byReviewer))
	for r := range byReviewer {
		reviewers = append(reviewers, r)
	}
	sort.Strings(reviewers)
	idx := map[string]int{}
	for i, r := range reviewers {
		idx[r] = i
	}
	var ag Agreement
	var units [][]float64
	for _, m := range byItem {
		if len(m) < 2 {
			continue
		}
		u := make([]float64, len(reviewers))
		for i := range u {
			u[i] = math.NaN()
		}
		for r, v := range m {
			u[idx[r]] = v
		}
		units = append(units, u)
	}
	ag.AlphaItems = len(units)
	ag.Alpha = math.NaN()
	if a, err := KrippendorffAlpha(units, metric); err == nil {
		ag.Alpha = a
	}
	for i := 0; i < len(reviewers); i++ {
		for j := i + 1; j < len(reviewers); j++ {
			var a, b []string
			for _, m := range byItem {
				va, oka := m[reviewers[i]]
				vb, okb := m[reviewers[j]]
				if oka && okb {
					a = append(a, strconv.FormatFloat(va, 'g', -1, 64))
					b = append(b, strconv.FormatFloat(vb, 'g', -1, 64))
				}
			}
			if len(a) < minPair {
				continue
			}
			k, err := CohenKappa(a, b)
			if err != nil {
				continue
			}
			ag.Pairs = append(ag.Pairs, PairKappa{A: reviewers[i], B: reviewers[j], N: len(a), Kappa: k})
		}
	}
	for _, r := range reviewers {
		rs := byReviewer[r]
		st := ReviewerStats{Reviewer: r, Items: len(rs)}
		sort.Slice(rs, func(i, j int) bool { return rs[i].At.Before(rs[j].At) })
		var gaps []float64
		for k := 1; k < len(rs); k++ {
			if g := rs[k].At.Sub(rs[k-1].At).Seconds(); g > 0 && g <= 600 {
				gaps = append(gaps, g)
			}
		}
		st.MedianSecs, st.PerHour = math.NaN(), math.NaN()
		if len(gaps) > 0 {
			st.MedianSecs = median(gaps)
			st.PerHour = 3600 / st.MedianSecs
		}
		exact, abs := 0.0, 0.0
		for _, rec := range rs {
			var others []float64
			for o, v := range byItem[rec.Item] {
				if o != r {
					others = append(others, v)
				}
			}
			if len(others) < 2 {
				continue
			}
			c := median(others)
			st.ConsensusN++
			if rec.Value == c {
				exact++
			}
			abs += math.Abs(rec.Value - c)
		}
		st.ConsensusExact, st.ConsensusMAE = math.NaN(), math.NaN()
		if st.ConsensusN > 0 {
			st.ConsensusExact = exact / float64(st.ConsensusN)
			st.ConsensusMAE = abs / float64(st.ConsensusN)
		}
		ag.Reviewers = append(ag.Reviewers, st)
	}
	return ag
}

// median is the middle value, the mean of the two middle ones for an even
// count: gonum's LinInterp at 0.5 with the first value weighted 0 (R's type
// 7 quantile), exact for either count.
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 1 {
		return s[0]
	}
	w := make([]float64, len(s))
	for i := 1; i < len(w); i++ {
		w[i] = 1
	}
	return stat.Quantile(0.5, stat.LinInterp, s, w)
}

// QAAgreement compares automated QA with human judgement on the same
// outputs: human pass = score >= passAt. Where they disagree is where the
// router learns from wrong labels.
type QAAgreement struct {
	N                int
	BothPass         int
	BothFail         int
	QAPassHumanFail  int // QA let through what people reject
	QAFailHumanPass  int // QA rejected what people accept
	Agreement, Kappa float64
}

// CompareQA builds the QA-vs-human table from (qaPass, humanScore) pairs.
func CompareQA(qaPass []bool, human []float64, passAt float64) QAAgreement {
	var q QAAgreement
	var a, b []string
	for i := range qaPass {
		hp := human[i] >= passAt
		q.N++
		switch {
		case qaPass[i] && hp:
			q.BothPass++
		case !qaPass[i] && !hp:
			q.BothFail++
		case qaPass[i]:
			q.QAPassHumanFail++
		default:
			q.QAFailHumanPass++
		}
		a = append(a, strconv.FormatBool(qaPass[i]))
		b = append(b, strconv.FormatBool(hp))
	}
	q.Agreement, q.Kappa = math.NaN(), math.NaN()
	if q.N > 0 {
		q.Agreement = float64(q.BothPass+q.BothFail) / float64(q.N)
		q.Kappa, _ = CohenKappa(a, b)
	}
	return q
}
