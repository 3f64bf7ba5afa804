package review

import (
	"errors"
	"math"
	"sort"
)

// ErrTooFewItems is returned when an agreement statistic has nothing to
// compare (no paired ratings, or no pairable values at all).
var ErrTooFewItems = errors.New("too few paired ratings")

// CohenKappa is Cohen's kappa between two raters who labelled the same items:
// a[i] and b[i] are the two labels of item i. Kappa is (po-pe)/(1-pe), the
// observed agreement corrected for the agreement expected by chance from each
// rater's own label frequencies. When both raters always use one and the same
// label (pe = 1) agreement is perfect and kappa is defined as 1.
func CohenKappa(a, b []string) (float64, error) {
	if len(a) != len(b) {
		return 0, errors.New("raters labelled different numbers of items")
	}
	n := float64(len(a))
	if n == 0 {
		return 0, ErrTooFewItems
	}
	ca, cb := map[string]float64{}, map[string]float64{}
	agree := 0.0
	for i := range a {
		ca[a[i]]++
		cb[b[i]]++
		if a[i] == b[i] {
			agree++
		}
	}
	po := agree / n
	pe := 0.0
	for k, v := range ca {
		pe += (v / n) * (cb[k] / n)
	}
	if pe == 1 {
		return 1, nil
	}
	return (po - pe) / (1 - pe), nil
}

// Metric is the difference function of Krippendorff's alpha: how far apart
// two values are for the scale the ratings are on.
type Metric int

const (
	Nominal  Metric = iota // labels: any two different values disagree fully
	Ordinal                // ranks: distance counts the values in between
	Interval               // numbers: squared difference
)

// KrippendorffAlpha is Krippendorff's alpha reliability for any number of
// raters with missing ratings. units[u][r] is rater r's value for unit u, NaN
// when rater r did not rate unit u. Units with fewer than two values are not
// pairable and are ignored (Krippendorff 2011, "Computing Krippendorff's
// Alpha-Reliability"). Alpha = 1 - Do/De; when all pairable values are equal
// (De = 0) it returns 1.
func KrippendorffAlpha(units [][]float64, metric Metric) (float64, error) {
	// Coincidence matrix over the distinct values.
	valSet := map[float64]bool{}
	for _, u := range units {
		for _, v := range u {
			if !math.IsNaN(v) {
				valSet[v] = true
			}
		}
	}
	vals := make([]float64, 0, len(valSet))
	for v := range valSet {
		vals = append(vals, v)
	}
	sort.Float64s(vals)
	idx := make(map[float64]int, len(vals))
	for i, v := range vals {
		idx[v] = i
	}
	k := len(vals)
	o := make([][]float64, k)
	for i := range o {
		o[i] = make([]float64, k)
	}
	for _, u := range units {
		var present []int
		for _, v := range u {
			if !math.IsNaN(v) {
				present = append(present, idx[v])
			}
		}
		m := float64(len(present))
		if m < 2 {
			continue
		}
		for i, c := range present {
			for j, kk := range present {
				if i != j {
					o[c][kk] += 1 / (m - 1)
				}
			}
		}
	}
	nc := make([]float64, k)
	n := 0.0
	for c := range o {
		for kk := range o[c] {
			nc[c] += o[c][kk]
		}
		n += nc[c]
	}
	if n < 2 {
		return 0, ErrTooFewItems
	}
	delta := func(c, kk int) float64 {
		switch metric {
		case Interval:
			d := vals[c] - vals[kk]
			return d * d
		case Ordinal:
			lo, hi := c, kk
			if lo > hi {
				lo, hi = hi, lo
			}
			s := 0.0
			for g := lo; g <= hi; g++ {
				s += nc[g]
			}
			s -= (nc[lo] + nc[hi]) / 2
			return s * s
		default:
			if c == kk {
				return 0
			}
			return 1
		}
	}
	do, de := 0.0, 0.0
	for c := 0; c < k; c++ {
		for kk := 0; kk < k; kk++ {
			d := delta(c, kk)
			do += o[c][kk] * d
			de += nc[c] * nc[kk] * d
		}
	}
	if de == 0 {
		return 1, nil
	}
	return 1 - (n-1)*do/de, nil
}
