package jobs

import (
	"math"
	"sort"
)

// CalBin is one cell of the calibration aggregate ClickHouse returns: the
// decisions of one model whose logged calibrated P fell in one fine bin,
// split into fit and holdout rows by a hash of the request id. Sums are
// inverse-propensity weighted (W = sum 1/propensity), so the aggregate
// describes all traffic, not only what the live policy chose.
type CalBin struct {
	Model   string
	Bin     int
	Holdout bool
	N       float64 // rows
	W       float64 // sum w
	WY      float64 // sum w y
	WP      float64 // sum w p
	WPP     float64 // sum w p^2
	WYP     float64 // sum w y p
}

// MeanP is the bin's weighted mean predicted probability.
func (b CalBin) MeanP() float64 { return b.WP / b.W }

// Map is a monotone map from an old calibrated probability to a new one:
// knots X increasing, Y non-decreasing, linear between, flat outside.
type Map struct {
	X []float64 `json:"x"`
	Y []float64 `json:"y"`
}

// Apply maps p.
func (m Map) Apply(p float64) float64 {
	n := len(m.X)
	if n == 0 {
		return p
	}
	if p <= m.X[0] {
		return m.Y[0]
	}
	if p >= m.X[n-1] {
		return m.Y[n-1]
	}
	i := sort.SearchFloat64s(m.X, p)
	t := (p - m.X[i-1]) / (m.X[i] - m.X[i-1])
	return m.Y[i-1] + t*(m.Y[i]-m.Y[i-1])
}

// Isotonic fits a non-decreasing step function to (x, y) with weights w by
// pool-adjacent-violators; x must be increasing. It returns the fitted y.
func Isotonic(x, y, w []float64) []float64 {
	type block struct {
		sw, swy float64
		n       int
	}
	var st []block
	for i := range x {
		st = append(st, block{w[i], w[i] * y[i], 1})
		for len(st) > 1 {
			a, b := st[len(st)-2], st[len(st)-1]
			if a.swy/a.sw <= b.swy/b.sw {
				break
			}
			st = st[:len(st)-2]
			st = append(st, block{a.sw + b.sw, a.swy + b.swy, a.n + b.n})
		}
	}
	out := make([]float64, 0, len(x))
	for _, b := range st {
		for range b.n {
			out = append(out, b.swy/b.sw)
		}
	}
	return out
}

// FitMap fits the recalibration map of one model from its fit-side bins:
// isotonic regression of the observed success rate on the mean logged P,
// with a prior of priorW weight pulling each bin towards its own P (so a
// bin with a handful of rows does not swing the map).
func FitMap(bins []CalBin, priorW float64) Map {
	var bs []CalBin
	for _, b := range bins {
		if b.W > 0 {
			bs = append(bs, b)
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].MeanP() < bs[j].MeanP() })
	if len(bs) == 0 {
		return Map{}
	}
	x := make([]float64, len(bs))
	y := make([]float64, len(bs))
	w := make([]float64, len(bs))
	for i, b := range bs {
		x[i] = b.MeanP()
		y[i] = (b.WY + priorW*x[i]) / (b.W + priorW)
		w[i] = b.W + priorW
	}
	fit := Isotonic(x, y, w)
	m := Map{X: make([]float64, 0, len(x)), Y: make([]float64, 0, len(x))}
	for i := range x {
		if len(m.X) > 0 && x[i] <= m.X[len(m.X)-1] {
			// equal mean P: keep the later (pooled) value
			m.Y[len(m.Y)-1] = fit[i]
			continue
		}
		m.X = append(m.X, x[i])
		m.Y = append(m.Y, fit[i])
	}
	return m
}

// Calibration is ECE and Brier score of a set of predictions.
type Calibration struct {
	ECE   float64 `json:"ece"`
	Brier float64 `json:"brier"`
	N     float64 `json:"n"`
}

// ECEBins is the number of equal-width bins of predicted probability ECE is
// computed over.
const ECEBins = 10

// Evaluate computes weighted ECE (10 equal-width bins of the predicted
// probability) and Brier score of bins, with the prediction of each fine
// bin mapped by f (identity when nil). Brier under a map treats every row of
// a fine bin as predicted f(mean P), exact before mapping up to that.
func Evaluate(bins []CalBin, f func(float64) float64) Calibration {
	var coarseW, coarseWY, coarseWP [ECEBins]float64
	var c Calibration
	var sw, sq float64
	for _, b := range bins {
		if b.W <= 0 {
			continue
		}
		c.N += b.N
		sw += b.W
		if f == nil {
			p := b.MeanP()
			k := min(int(p*ECEBins), ECEBins-1)
			coarseW[k] += b.W
			coarseWY[k] += b.WY
			coarseWP[k] += b.WP
			sq += b.WY - 2*b.WYP + b.WPP
			continue
		}
		p := f(b.MeanP())
		k := min(int(p*ECEBins), ECEBins-1)
		coarseW[k] += b.W
		coarseWY[k] += b.WY
		coarseWP[k] += p * b.W
		sq += b.WY - 2*p*b.WY + p*p*b.W
	}
	if sw == 0 {
		return c
	}
	for k := range ECEBins {
		c.ECE += math.Abs(coarseWY[k]-coarseWP[k]) / sw
	}
	c.Brier = sq / sw
	return c
}
