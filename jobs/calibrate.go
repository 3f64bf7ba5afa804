package jobs

import (
	"math"

	"github.com/routelab/routelab/router"
)

// CalBin is one cell of the calibration aggregate a source returns: the
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

// Apply maps p: router's isotonic interpolation on the knots, the
// identity for an empty map.
func (m Map) Apply(p float64) float64 {
	if len(m.X) == 0 {
		return p
	}
	c := router.Calibrator{Kind: "isotonic", X: m.X, Y: m.Y}
	return c.Apply(p)
}

// FitMap fits the recalibration map of one model from its fit-side bins:
// router.FitIsotonicValues of the observed success rate on the mean logged
// P, with a prior of priorW weight pulling each bin towards its own P (so
// a bin with a handful of rows does not swing the map).
func FitMap(bins []CalBin, priorW float64) Map {
	var x, y, w []float64
	for _, b := range bins {
		if b.W <= 0 {
			continue
		}
		p := b.MeanP()
		x = append(x, p)
		y = append(y, (b.WY+priorW*p)/(b.W+priorW))
		w = append(w, b.W+priorW)
	}
	if len(x) == 0 {
		return Map{}
	}
	c := router.FitIsotonicValues(x, y, w)
	return Map{X: c.X, Y: c.Y}
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
