package router

import (
	"math"
	"sort"
)

// FitPlatt fits p = sigmoid(A*z + B) to labels y with weights w (nil: all 1)
// by Newton's method on the weighted log-loss, with Platt's smoothed targets
// (N+ + 1)/(N+ + 2) and 1/(N- + 2) so separable data gives finite
// parameters (Platt 1999; Lin, Lin and Weng 2007).
func FitPlatt(z []float64, y []bool, w []float64) Calibrator {
	var npos, nneg float64
	for i := range z {
		wi := weight(w, i)
		if y[i] {
			npos += wi
		} else {
			nneg += wi
		}
	}
	hi := (npos + 1) / (npos + 2)
	lo := 1 / (nneg + 2)
	t := func(i int) float64 {
		if y[i] {
			return hi
		}
		return lo
	}
	a, b := 1.0, math.Log((nneg+1)/(npos+1))*-1
	loss := func(a, b float64) float64 {
		s := 0.0
		for i := range z {
			f := a*z[i] + b
			// t*log(1+e^-f) + (1-t)*log(1+e^f)
			s += weight(w, i) * (t(i)*softplus(-f) + (1-t(i))*softplus(f))
		}
		return s
	}
	cur := loss(a, b)
	for it := 0; it < 100; it++ {
		var g1, g2, h11, h22, h21 float64
		for i := range z {
			wi := weight(w, i)
			p := sigmoid(a*z[i] + b)
			d := wi * (p - t(i))
			g1 += d * z[i]
			g2 += d
			q := wi * p * (1 - p)
			h11 += q * z[i] * z[i]
			h22 += q
			h21 += q * z[i]
		}
		if math.Abs(g1) < 1e-9 && math.Abs(g2) < 1e-9 {
			break
		}
		// Levenberg-style damping keeps the step defined on flat regions.
		const sigma = 1e-12
		h11 += sigma
		h22 += sigma
		det := h11*h22 - h21*h21
		da := -(h22*g1 - h21*g2) / det
		db := -(-h21*g1 + h11*g2) / det
		step := 1.0
		for step > 1e-10 {
			na, nb := a+step*da, b+step*db
			if l := loss(na, nb); l < cur+1e-4*step*(g1*da+g2*db) {
				a, b, cur = na, nb, l
				break
			}
			step /= 2
		}
		if step <= 1e-10 {
			break
		}
	}
	return Calibrator{Kind: "platt", A: a, B: b}
}

func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

func weight(w []float64, i int) float64 {
	if w == nil {
		return 1
	}
	return w[i]
}

// block is a pooled run of adjacent points in pool-adjacent-violators.
type block struct {
	sx, sy, w float64 // weighted sums of x and y, total weight
	n         int
}

func (b block) mean() float64 { return b.sy / b.w }

// pav pools adjacent points (taken in the given order) until their
// weighted means are increasing: the blocks of the weighted least-squares
// non-decreasing fit (Barlow et al. 1972). Blocks with equal means are
// pooled too, which leaves the fit unchanged and gives one block (one
// knot) per level. x may be nil.
func pav(x, y, w []float64) []block {
	var st []block
	for i := range y {
		wi := weight(w, i)
		xi := 0.0
		if x != nil {
			xi = x[i]
		}
		st = append(st, block{xi * wi, y[i] * wi, wi, 1})
		for len(st) > 1 {
			a, b := st[len(st)-2], st[len(st)-1]
			if a.mean() < b.mean() {
				break
			}
			st = append(st[:len(st)-2], block{a.sx + b.sx, a.sy + b.sy, a.w + b.w, a.n + b.n})
		}
	}
	return st
}

// PAV is weighted isotonic regression by pool-adjacent-violators: the
// non-decreasing sequence closest to y in weighted least squares (y taken
// in the given order).
func PAV(y, w []float64) []float64 {
	out := make([]float64, 0, len(y))
	for _, b := range pav(nil, y, w) {
		for range b.n {
			out = append(out, b.mean())
		}
	}
	return out
}

// FitIsotonic fits a non-decreasing map from raw score z to probability
// from labels y with weights w (nil: all 1); see FitIsotonicValues.
func FitIsotonic(z []float64, y []bool, w []float64) Calibrator {
	yf := make([]float64, len(y))
	for i, v := range y {
		if v {
			yf[i] = 1
		}
	}
	return FitIsotonicValues(z, yf, w)
}

// FitIsotonicValues is the one isotonic fit of routelab (training's
// calibration maps and the jobs' recalibration maps): points with equal x
// are merged into one (weighted mean y, summed weight, as scikit-learn
// does), then PAV on y in order of x with weights w (nil: all 1), one knot
// per pooled block at the block's weighted mean x and weighted mean y.
// Apply interpolates linearly between knots and is flat outside them.
func FitIsotonicValues(x, y, w []float64) Calibrator {
	order := make([]int, len(x))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return x[order[a]] < x[order[b]] })
	xs, ys, ws := make([]float64, 0, len(x)), make([]float64, 0, len(x)), make([]float64, 0, len(x))
	for _, i := range order {
		wi := weight(w, i)
		if k := len(xs) - 1; k >= 0 && x[i] == xs[k] {
			if tw := ws[k] + wi; tw > 0 {
				ys[k] = (ys[k]*ws[k] + y[i]*wi) / tw
			}
			ws[k] += wi
			continue
		}
		xs, ys, ws = append(xs, x[i]), append(ys, y[i]), append(ws, wi)
	}
	c := Calibrator{Kind: "isotonic"}
	for _, b := range pav(xs, ys, ws) {
		kx := b.sx / b.w
		if k := len(c.X); k > 0 && kx <= c.X[k-1] {
			kx = math.Nextafter(c.X[k-1], math.Inf(1)) // keep the knots increasing
		}
		c.X = append(c.X, kx)
		c.Y = append(c.Y, b.mean())
	}
	return c
}

// ECEBins is the number of equal-width bins ECE uses.
const ECEBins = 15

// Calibration measures predicted probabilities p against outcomes y with
// weights w (nil: all 1): expected calibration error over 15 equal-width
// bins, the Brier score and the reliability curve (non-empty bins).
func Calibration(p []float64, y []bool, w []float64) (ece, brier float64, curve []ReliabilityPoint) {
	var sp, sy, sw [ECEBins]float64
	total := 0.0
	for i := range p {
		wi := weight(w, i)
		yi := 0.0
		if y[i] {
			yi = 1
		}
		b := int(p[i] * ECEBins)
		if b >= ECEBins {
			b = ECEBins - 1
		}
		if b < 0 {
			b = 0
		}
		sp[b] += wi * p[i]
		sy[b] += wi * yi
		sw[b] += wi
		total += wi
		brier += wi * (p[i] - yi) * (p[i] - yi)
	}
	if total == 0 {
		return 0, 0, nil
	}
	for b := 0; b < ECEBins; b++ {
		if sw[b] == 0 {
			continue
		}
		mp, r := sp[b]/sw[b], sy[b]/sw[b]
		ece += sw[b] / total * math.Abs(mp-r)
		curve = append(curve, ReliabilityPoint{MeanP: mp, Rate: r, N: sw[b]})
	}
	return ece, brier / total, curve
}
