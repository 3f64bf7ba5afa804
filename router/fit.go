package router

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/optimize"
)

// design is a sparse binary design matrix: row i's active features are
// idx[off[i]:off[i+1]].
type design struct {
	off []int32
	idx []uint16
}

func buildDesign(ex []Example, workers int) design {
	n := len(ex)
	parts := make([]design, workers)
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			var f Features
			d := design{off: make([]int32, 0, hi-lo+1), idx: make([]uint16, 0, (hi-lo)*40)}
			d.off = append(d.off, 0)
			for i := lo; i < hi; i++ {
				Extract(&ex[i].Req, ex[i].Req.EditDepth, &f)
				d.idx = append(d.idx, f.Idx[:f.N]...)
				d.off = append(d.off, int32(len(d.idx)))
			}
			parts[w] = d
		}(w, lo, max(lo, hi))
	}
	wg.Wait()
	out := design{off: make([]int32, 1, n+1)}
	for _, p := range parts {
		base := int32(len(out.idx))
		out.idx = append(out.idx, p.idx...)
		for _, o := range p.off[1:] {
			out.off = append(out.off, base+o)
		}
	}
	return out
}

func (d *design) row(i int) []uint16 { return d.idx[d.off[i]:d.off[i+1]] }

func (d *design) z(i int, w []float64) float64 {
	s := 0.0
	for _, j := range d.row(i) {
		s += w[j]
	}
	return s
}

// fitLR fits L2-regularised weighted logistic regression with gonum's
// L-BFGS on rows of d.
func fitLR(d *design, rows []int, y []bool, wt []float64, lambda float64) ([]float64, error) {
	sw := 0.0
	for _, w := range wt {
		sw += w
	}
	var lastX []float64
	var lastF float64
	lastG := make([]float64, Dim)
	eval := func(x []float64) {
		if lastX != nil && floatsEqual(lastX, x) {
			return
		}
		lastX = append(lastX[:0], x...)
		for j := range lastG {
			lastG[j] = 0
		}
		f := 0.0
		for k, i := range rows {
			r := d.row(i)
			z := 0.0
			for _, j := range r {
				z += x[j]
			}
			w := wt[k] / sw
			if y[k] {
				f += w * softplus(-z)
			} else {
				f += w * softplus(z)
			}
			g := sigmoid(z)
			if y[k] {
				g -= 1
			}
			g *= w
			for _, j := range r {
				lastG[j] += g
			}
		}
		for j := 1; j < len(x); j++ {
			f += 0.5 * lambda * x[j] * x[j]
			lastG[j] += lambda * x[j]
		}
		lastF = f
	}
	p := optimize.Problem{
		Func: func(x []float64) float64 { eval(x); return lastF },
		Grad: func(grad, x []float64) { eval(x); copy(grad, lastG) },
	}
	init := make([]float64, Dim)
	pos := 0.0
	for k := range rows {
		if y[k] {
			pos += wt[k]
		}
	}
	rate := math.Min(math.Max(pos/sw, 1e-3), 1-1e-3)
	init[fBias] = math.Log(rate / (1 - rate))
	res, err := optimize.Minimize(p, init, &optimize.Settings{
		GradientThreshold: 1e-6,
		MajorIterations:   300,
		Converger:         &optimize.FunctionConverge{Relative: 1e-7, Iterations: 20},
	}, &optimize.LBFGS{})
	if err != nil && res == nil {
		return nil, err
	}
	return res.X, nil
}

// fitModel fits one model's weights. With cfg.Lambda 0 it tries each
// lambda of the grid on (a stride sample of at most SearchRows of) the
// training rows and keeps the one with the lowest weighted log-loss on the
// calibration-fit rows.
func fitModel(d *design, rows []int, y []bool, wt []float64, calRows []int, ex []Example, w func(int) float64, cfg TrainConfig) ([]float64, float64, error) {
	if cfg.Lambda > 0 {
		ad, ar, ay, aw := aggregate(d, rows, y, wt)
		x, err := fitLR(&ad, ar, ay, aw, cfg.Lambda)
		return x, cfg.Lambda, err
	}
	sub, sy, sw := rows, y, wt
	if len(rows) > cfg.SearchRows {
		stride := float64(len(rows)) / float64(cfg.SearchRows)
		sub, sy, sw = nil, nil, nil
		for k := 0.0; int(k) < len(rows); k += stride {
			sub, sy, sw = append(sub, rows[int(k)]), append(sy, y[int(k)]), append(sw, wt[int(k)])
		}
	}
	ad, ar, ay, aw := aggregate(d, sub, sy, sw)
	var best []float64
	bestLoss, bestLambda := math.Inf(1), 0.0
	for _, l := range cfg.LambdaGrid {
		x, err := fitLR(&ad, ar, ay, aw, l)
		if err != nil {
			return nil, 0, err
		}
		loss, tw := 0.0, 0.0
		for _, i := range calRows {
			z := d.z(i, x)
			wi := w(i)
			if ex[i].Success {
				loss += wi * softplus(-z)
			} else {
				loss += wi * softplus(z)
			}
			tw += wi
		}
		if loss /= math.Max(tw, 1e-12); loss < bestLoss {
			best, bestLoss, bestLambda = x, loss, l
		}
	}
	if len(sub) == len(rows) {
		return best, bestLambda, nil
	}
	lambda := bestLambda * float64(len(sub)) / float64(len(rows))
	ad, ar, ay, aw = aggregate(d, rows, y, wt)
	x, err := fitLR(&ad, ar, ay, aw, lambda)
	return x, lambda, err
}

// aggregate merges rows with identical features and label, summing their
// weights: the weighted log-loss is unchanged and, since workloads repeat
// prompts and settings, each optimiser pass gets much cheaper.
func aggregate(d *design, rows []int, y []bool, wt []float64) (design, []int, []bool, []float64) {
	out := design{off: []int32{0}}
	var oy []bool
	var ow []float64
	seen := make(map[uint64][]int, len(rows)/4)
	for k, i := range rows {
		r := d.row(i)
		h := uint64(fnvOffset)
		if y[k] {
			h ^= 1
		}
		for _, j := range r {
			h ^= uint64(j)
			h *= fnvPrime
		}
		found := -1
		for _, u := range seen[h] {
			if oy[u] == y[k] && equalRows(out.row(u), r) {
				found = u
				break
			}
		}
		if found >= 0 {
			ow[found] += wt[k]
			continue
		}
		seen[h] = append(seen[h], len(oy))
		out.idx = append(out.idx, r...)
		out.off = append(out.off, int32(len(out.idx)))
		oy = append(oy, y[k])
		ow = append(ow, wt[k])
	}
	orows := make([]int, len(oy))
	for i := range orows {
		orows[i] = i
	}
	return out, orows, oy, ow
}

func equalRows(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func floatsEqual(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
