package router

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"gonum.org/v1/gonum/optimize"

	"github.com/routelab/routelab/events"
)

// Example is one logged routing outcome: the request as the router saw it
// (EditDepth is the depth the features were computed at), the model the
// logging policy called, the propensity it had of calling it, and whether
// the output succeeded. Training is a function of a slice of these, whatever
// the source (JSONL from the simulator, ClickHouse rows from serve).
type Example struct {
	Req        Request
	Model      string
	Propensity float64
	Success    bool
	TS         int64 // unix ms; 0 when unknown
}

// TrainConfig says what to build around the learned classifier.
type TrainConfig struct {
	Name         string
	Models       []Model // catalog the policy routes between
	DefaultModel string
	Rules        []Rule  // candidate rules; each is audited and kept only if the data supports it
	Epsilon      float64 // exploration of the trained policy
	// Lambda is the L2 penalty on the (IPS-weighted, averaged) log-loss;
	// 0 picks it per model from LambdaGrid by held-out log-loss.
	Lambda     float64
	LambdaGrid []float64
	// SearchRows caps the training rows used to pick lambda; the pick is
	// then scaled by the sample fraction for the full fit (the penalty on
	// an averaged loss shrinks like 1/n).
	SearchRows int
	// Unweighted turns inverse-propensity weighting off (for comparison).
	Unweighted bool
	// MaxWeight clips inverse-propensity weights.
	MaxWeight float64
	// Slack per tier: the chosen threshold is the cheapest whose expected
	// success is within Slack of the best threshold's.
	Slack map[Tier]float64
	// DepthDrop: the edit-depth limit is the first depth where the best
	// model's expected success falls this far below a reset's.
	DepthDrop float64
	Workers   int
	Source    string
	Progress  func(format string, args ...any)
}

func (c *TrainConfig) defaults() {
	if c.Name == "" {
		c.Name = "trained"
	}
	if len(c.LambdaGrid) == 0 {
		c.LambdaGrid = []float64{1e-3, 3e-3, 1e-2}
	}
	if c.SearchRows == 0 {
		c.SearchRows = 40000
	}
	if c.MaxWeight == 0 {
		c.MaxWeight = 50
	}
	if c.Slack == nil {
		c.Slack = map[Tier]float64{TierDraft: 0.03, TierStandard: 0.012, TierPremium: 0.004}
	}
	if c.DepthDrop == 0 {
		c.DepthDrop = 0.03
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
}

// split assigns an example to train (0), calibration fit (1) or
// calibration check (2) by a hash of the request id, so retraining on more
// data keeps old assignments.
func split(id string) int {
	u, _ := draws(id, "split")
	switch {
	case u < 0.7:
		return 0
	case u < 0.85:
		return 1
	}
	return 2
}

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

// ErrNoData means there is too little logged data to train a model.
var ErrNoData = errors.New("not enough logged data")

// Train learns a routing policy from logged examples: per model an
// IPS-weighted, L2-regularised logistic regression on the request features
// (gonum L-BFGS), a Platt or isotonic calibration map chosen on held-out
// data, per-tier thresholds on the calibrated cost/success frontier, an
// edit-depth limit, audited rules and reference distributions for drift.
func Train(ex []Example, cfg TrainConfig) (*Policy, error) {
	cfg.defaults()
	start := time.Now()
	routable := cfg.Models[:0:0]
	for _, m := range cfg.Models {
		if !m.PinOnly {
			routable = append(routable, m)
		}
	}
	cfg.Models = routable
	cat := Catalog{DefaultModel: cfg.DefaultModel, Models: cfg.Models}
	if err := cat.Validate(); err != nil {
		return nil, err
	}
	midx := map[string]int{}
	for i, m := range cfg.Models {
		midx[m.Name] = i
	}
	// Keep examples whose model is in the catalog and propensity is valid.
	kept := ex[:0:0]
	for i := range ex {
		if _, ok := midx[ex[i].Model]; ok && ex[i].Propensity > 0 && ex[i].Propensity <= 1 {
			kept = append(kept, ex[i])
		}
	}
	ex = kept
	cfg.Progress("train: %d usable examples, extracting features", len(ex))
	d := buildDesign(ex, cfg.Workers)
	sp := make([]uint8, len(ex))
	for i := range ex {
		sp[i] = uint8(split(ex[i].Req.ID))
	}
	w := func(i int) float64 {
		if cfg.Unweighted {
			return 1
		}
		return math.Min(1/ex[i].Propensity, cfg.MaxWeight)
	}

	nm := len(cfg.Models)
	type perModel struct {
		rows    [3][]int
		weights []float64
		cal     Calibrator
		metrics ModelMetrics
		lambda  float64
		zs, zc  []float64
		ys, yc  []bool
		ws, wc  []float64
		err     error
	}
	pm := make([]perModel, nm)
	for i := range ex {
		m := midx[ex[i].Model]
		pm[m].rows[sp[i]] = append(pm[m].rows[sp[i]], i)
	}
	for m := range pm {
		if len(pm[m].rows[0]) < 50 || len(pm[m].rows[1]) < 20 || len(pm[m].rows[2]) < 20 {
			return nil, fmt.Errorf("%w: model %s has %d/%d/%d train/calibration/check examples, want at least 50/20/20",
				ErrNoData, cfg.Models[m].Name, len(pm[m].rows[0]), len(pm[m].rows[1]), len(pm[m].rows[2]))
		}
	}

	cfg.Progress("train: fitting %d models (IPS weighting %v) on %d workers", nm, !cfg.Unweighted, cfg.Workers)
	sem := make(chan struct{}, cfg.Workers)
	var wg sync.WaitGroup
	for m := range pm {
		wg.Add(1)
		sem <- struct{}{}
		go func(m int) {
			defer func() { <-sem; wg.Done() }()
			p := &pm[m]
			rows := p.rows[0]
			y := make([]bool, len(rows))
			wt := make([]float64, len(rows))
			for k, i := range rows {
				y[k], wt[k] = ex[i].Success, w(i)
			}
			t0 := time.Now()
			p.weights, p.lambda, p.err = fitModel(&d, rows, y, wt, p.rows[1], ex, w, cfg)
			if p.err != nil {
				return
			}
			cfg.Progress("train: %s fitted on %d examples (lambda %g) in %s", cfg.Models[m].Name, len(rows), p.lambda, time.Since(t0).Round(time.Millisecond))
			scores := func(rows []int) ([]float64, []bool, []float64) {
				z := make([]float64, len(rows))
				y := make([]bool, len(rows))
				wt := make([]float64, len(rows))
				for k, i := range rows {
					z[k], y[k], wt[k] = d.z(i, p.weights), ex[i].Success, w(i)
				}
				return z, y, wt
			}
			p.zs, p.ys, p.ws = scores(p.rows[1])
			p.zc, p.yc, p.wc = scores(p.rows[2])
			platt := FitPlatt(p.zs, p.ys, p.ws)
			iso := FitIsotonic(p.zs, p.ys, p.ws)
			ep, bp, _ := Calibration(applyAll(&platt, p.zc), p.yc, p.wc)
			ei, bi, _ := Calibration(applyAll(&iso, p.zc), p.yc, p.wc)
			p.metrics = ModelMetrics{Model: cfg.Models[m].Name, Train: len(rows), Holdout: len(p.rows[2]), ECEPlatt: ep, ECEIso: ei, Lambda: p.lambda}
			// Pick on held-out ECE, Brier breaking near-ties; ship the
			// chosen map refitted on both calibration halves.
			z := append(append([]float64(nil), p.zs...), p.zc...)
			yy := append(append([]bool(nil), p.ys...), p.yc...)
			ww := append(append([]float64(nil), p.ws...), p.wc...)
			if ei+0.002 < ep || (math.Abs(ei-ep) <= 0.002 && bi < bp) {
				p.metrics.Calibrator, p.metrics.Brier = "isotonic", bi
				p.cal = FitIsotonic(z, yy, ww)
			} else {
				p.metrics.Calibrator, p.metrics.Brier = "platt", bp
				p.cal = FitPlatt(z, yy, ww)
			}
		}(m)
	}
	wg.Wait()
	for m := range pm {
		if pm[m].err != nil {
			return nil, fmt.Errorf("fit %s: %w", cfg.Models[m].Name, pm[m].err)
		}
	}

	pol := &Policy{
		Name: cfg.Name, Models: cfg.Models, DefaultModel: cfg.DefaultModel, Epsilon: cfg.Epsilon,
		Classifier:  &Classifier{FeatureVersion: FeatureVersion, GramBuckets: GramBuckets, Weights: map[string][]float64{}},
		Calibration: map[string]Calibrator{},
		Metrics:     &Metrics{Frontier: map[Tier][]FrontierPoint{}},
	}
	// Held-out calibration of the whole classifier: every model's check
	// rows, scored with the map fitted on the other half only.
	var hp []float64
	var hy []bool
	var hw []float64
	for m := range pm {
		p := &pm[m]
		pol.Classifier.Weights[cfg.Models[m].Name] = p.weights
		pol.Calibration[cfg.Models[m].Name] = p.cal
		pol.Metrics.PerModel = append(pol.Metrics.PerModel, p.metrics)
		var half Calibrator
		if p.metrics.Calibrator == "isotonic" {
			half = FitIsotonic(p.zs, p.ys, p.ws)
		} else {
			half = FitPlatt(p.zs, p.ys, p.ws)
		}
		hp = append(hp, applyAll(&half, p.zc)...)
		hy = append(hy, p.yc...)
		hw = append(hw, p.wc...)
	}
	pol.Metrics.ECE, pol.Metrics.Brier, pol.Metrics.Reliability = Calibration(hp, hy, hw)
	pol.Metrics.Holdout = len(hp)
	cfg.Progress("train: held-out ECE %.4f Brier %.4f on %d examples", pol.Metrics.ECE, pol.Metrics.Brier, len(hp))
	if err := pol.Compile(); err != nil {
		return nil, err
	}

	// Threshold, rule and depth choices are made on the held-out requests.
	var hold []*Request
	for i := range ex {
		if sp[i] != 0 {
			hold = append(hold, &ex[i].Req)
		}
	}
	pol.Thresholds = chooseThresholds(pol, hold, cfg, pol.Metrics.Frontier)
	if err := pol.Compile(); err != nil {
		return nil, err
	}
	pol.Rules, pol.Metrics.RuleAudit = auditRules(pol, hold, cfg.Rules)
	pol.EditDepthLimit = chooseDepthLimit(pol, hold, cfg.DepthDrop)
	pol.Reference = reference(ex)
	pol.TrainingWindow = window(ex, cfg.Source)
	if err := pol.Seal(); err != nil {
		return nil, err
	}
	cfg.Progress("train: thresholds %v, edit depth limit %d, %d/%d rules kept, %s",
		pol.Thresholds, pol.EditDepthLimit, len(pol.Rules), len(cfg.Rules), time.Since(start).Round(time.Millisecond))
	return pol, nil
}

func applyAll(c *Calibrator, z []float64) []float64 {
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = c.Apply(v)
	}
	return out
}

// scored is one held-out request's eligible candidates under a policy.
type scored struct {
	tier  int
	n     int
	p     [MaxModels]float64
	cost  [MaxModels]float64
	model [MaxModels]int
}

func scoreRequests(pol *Policy, reqs []*Request) []scored {
	c := pol.c
	out := make([]scored, 0, len(reqs))
	var f Features
	for _, r := range reqs {
		s := scored{tier: tierIndex(r.Tier)}
		Extract(r, r.EditDepth, &f)
		for i := range c.models {
			cost, reason := c.check(i, r, s.tier, nil)
			if reason != "" {
				continue
			}
			s.p[s.n], s.cost[s.n], s.model[s.n] = c.score(i, &f), cost, i
			s.n++
		}
		if s.n > 0 {
			out = append(out, s)
		}
	}
	return out
}

// pick is Decide's greedy rule on a scored request.
func (s *scored) pick(thr float64) int {
	cheap, top := -1, -1
	for k := 0; k < s.n; k++ {
		if top < 0 || s.p[k] > s.p[top] {
			top = k
		}
		if s.p[k] >= thr && (cheap < 0 || s.cost[k] < s.cost[cheap] || s.cost[k] == s.cost[cheap] && s.p[k] > s.p[cheap]) {
			cheap = k
		}
	}
	if cheap >= 0 {
		return cheap
	}
	return top
}

// chooseThresholds walks thresholds 0.50..1.00 per tier, recording the
// calibrated expected success and cost of each (the frontier), and picks
// the cheapest threshold within the tier's slack of the best success.
func chooseThresholds(pol *Policy, reqs []*Request, cfg TrainConfig, frontier map[Tier][]FrontierPoint) map[Tier]float64 {
	sc := scoreRequests(pol, reqs)
	out := map[Tier]float64{}
	for ti, tier := range []Tier{TierDraft, TierStandard, TierPremium} {
		var pts []FrontierPoint
		best := 0.0
		for t := 50; t <= 100; t++ {
			thr := float64(t) / 100
			var succ, cost float64
			n := 0
			for k := range sc {
				if sc[k].tier != ti {
					continue
				}
				j := sc[k].pick(thr)
				succ += sc[k].p[j]
				cost += sc[k].cost[j]
				n++
			}
			if n == 0 {
				break
			}
			fp := FrontierPoint{Threshold: thr, Success: succ / float64(n), CostUSD: cost / float64(n)}
			pts = append(pts, fp)
			best = math.Max(best, fp.Success)
		}
		if len(pts) == 0 {
			out[tier] = 0.9
			continue
		}
		chosen := len(pts) - 1
		for k, fp := range pts {
			if fp.Success >= best-cfg.Slack[tier] && fp.CostUSD < pts[chosen].CostUSD {
				chosen = k
			}
		}
		pts[chosen].Chosen = true
		out[tier] = pts[chosen].Threshold
		frontier[tier] = pareto(pts)
	}
	return out
}

// pareto keeps the points no other point beats on both cost and success.
func pareto(pts []FrontierPoint) []FrontierPoint {
	s := append([]FrontierPoint(nil), pts...)
	sort.SliceStable(s, func(a, b int) bool {
		if s[a].CostUSD != s[b].CostUSD {
			return s[a].CostUSD < s[b].CostUSD
		}
		return s[a].Success > s[b].Success
	})
	var out []FrontierPoint
	best := -1.0
	for _, p := range s {
		if p.Success > best || p.Chosen {
			out = append(out, p)
			best = math.Max(best, p.Success)
		}
	}
	return out
}

// auditRules keeps a rule only when, on the held-out requests it matches,
// its model's calibrated success is not worse than the classifier's own
// choice by more than half a point.
func auditRules(pol *Policy, reqs []*Request, rules []Rule) ([]Rule, []RuleAudit) {
	c := pol.c
	idx := map[string]int{}
	for i, m := range c.models {
		idx[m.Name] = i
	}
	var kept []Rule
	var audit []RuleAudit
	var f Features
	for _, r := range rules {
		cr, err := compileRule(r, idx)
		if err != nil {
			continue
		}
		a := RuleAudit{Rule: r.Name}
		for _, req := range reqs {
			Extract(req, req.EditDepth, &f)
			if !cr.matches(req, &f) {
				continue
			}
			t := tierIndex(req.Tier)
			if _, reason := c.check(cr.model, req, t, nil); reason != "" {
				continue
			}
			s := scoreRequests(pol, []*Request{req})
			if len(s) == 0 {
				continue
			}
			j := s[0].pick(c.thresholds[t])
			a.Matched++
			a.RuleP += c.score(cr.model, &f)
			cost, _ := c.check(cr.model, req, t, nil)
			a.RuleCost += cost
			a.ClassP += s[0].p[j]
			a.ClassCost += s[0].cost[j]
		}
		if a.Matched > 0 {
			n := float64(a.Matched)
			a.RuleP, a.RuleCost, a.ClassP, a.ClassCost = a.RuleP/n, a.RuleCost/n, a.ClassP/n, a.ClassCost/n
			a.Kept = a.RuleP >= a.ClassP-0.005
		}
		if a.Kept {
			kept = append(kept, r)
		}
		audit = append(audit, a)
	}
	return kept, audit
}

// chooseDepthLimit returns the first edit depth at which the best eligible
// model's mean calibrated success on held-out edits falls DepthDrop below
// what a reset (ResetDepth) would give; 0 when it never does.
func chooseDepthLimit(pol *Policy, reqs []*Request, drop float64) int {
	var edits []Request
	for _, r := range reqs {
		if r.Mode == ModeEdit {
			edits = append(edits, *r)
		}
	}
	if len(edits) == 0 {
		return 0
	}
	mean := func(depth int) float64 {
		ptrs := make([]*Request, len(edits))
		for i := range edits {
			e := edits[i]
			e.EditDepth = depth
			ptrs[i] = &e
		}
		s := scoreRequests(pol, ptrs)
		tot := 0.0
		for k := range s {
			tot += s[k].p[s[k].pick(2)] // 2: nothing clears it, so the most likely model
		}
		return tot / float64(max(len(s), 1))
	}
	base := mean(ResetDepth)
	for depth := 2; depth <= 16; depth++ {
		if mean(depth) < base-drop {
			return depth
		}
	}
	return 0
}

func window(ex []Example, source string) *TrainingWindow {
	w := &TrainingWindow{Events: len(ex), Source: source}
	for i := range ex {
		ts := ex[i].TS
		if ts == 0 {
			continue
		}
		if w.FromTS == 0 || ts < w.FromTS {
			w.FromTS = ts
		}
		if ts > w.ToTS {
			w.ToTS = ts
		}
	}
	return w
}

// reference summarises the training requests' feature distributions for
// drift checks.
func reference(ex []Example) *Reference {
	r := &Reference{Events: len(ex), Hist: map[string]Histogram{}, Share: map[string]map[string]float64{
		"mode": {}, "tier": {}, "keyword": {}, "route": {},
	}}
	hist := func(name string, edges []float64, val func(*Example, *Features) float64) {
		h := Histogram{Edges: edges, Frac: make([]float64, len(edges))}
		r.Hist[name] = h
	}
	edges := map[string][]float64{
		"prompt_words": {0, 5, 13, 26, 51},
		"ref_count":    {0, 1, 2, 3, 4},
		"edit_depth":   {0, 1, 2, 3, 5, 7, 9, 11},
		"aspect":       {0, 0.87, 1.15},
	}
	for name, e := range edges {
		hist(name, e, nil)
	}
	if len(ex) == 0 {
		return r
	}
	var f Features
	n := float64(len(ex))
	bin := func(name string, v float64) {
		h := r.Hist[name]
		k := sort.SearchFloat64s(h.Edges, v+1e-12) - 1
		if k < 0 {
			k = 0
		}
		h.Frac[k] += 1 / n
	}
	for i := range ex {
		e := &ex[i]
		Extract(&e.Req, e.Req.EditDepth, &f)
		bin("prompt_words", float64(f.Words))
		bin("ref_count", float64(e.Req.RefCount))
		bin("edit_depth", float64(e.Req.EditDepth))
		bin("aspect", f.Aspect)
		r.Share["mode"][string(e.Req.Mode)] += 1 / n
		tier := e.Req.Tier
		if tier == "" {
			tier = TierStandard
		}
		r.Share["tier"][string(tier)] += 1 / n
		r.Share["route"][e.Model] += 1 / n
		for k := 0; k < numKW; k++ {
			if f.Has(k) {
				r.Share["keyword"][KeywordNames[k]] += 1 / n
			}
		}
	}
	return r
}

// ExampleFromDecision turns a logged decision event into a training
// example. The label is the first attempt's: the routed model returned an
// image (success = QA pass and the image was the one served) or ran out of
// time (failure). Events whose first attempt hit a provider error or rate
// limit say nothing about the model's quality and are skipped (ok=false).
// width and height are the requested size (0: derived from the aspect).
func ExampleFromDecision(d *events.Decision, width, height int) (Example, bool) {
	if len(d.Attempts) == 0 || d.Propensity <= 0 {
		return Example{}, false
	}
	first := d.Attempts[0]
	var success bool
	switch first.Status {
	case "ok":
		success = d.QAPass && d.Model == first.Model && d.Status == "ok"
	case "qa_fail", "timeout":
	default:
		return Example{}, false
	}
	f := &d.Features
	if width <= 0 || height <= 0 {
		width, height = 1024, 1024
		if f.Aspect > 1.15 {
			width, height = 1536, 1024
		} else if f.Aspect > 0 && f.Aspect < 0.87 {
			width, height = 1024, 1536
		}
	}
	req := Request{
		ID: d.RequestID, Tenant: d.Tenant, Unit: d.Unit, Mode: Mode(d.Mode), Prompt: d.Prompt,
		RefCount: f.RefCount, Width: width, Height: height, Tier: Tier(d.Tier), EditDepth: f.EditDepth,
		Constraints: Constraints{TextHeavy: f.TextHeavy, PreserveSubject: f.Preserve, MaxLatencyMS: f.MaxLatency, MaxCostUSD: f.MaxCostUSD},
	}
	return Example{Req: req, Model: first.Model, Propensity: d.Propensity, Success: success, TS: d.TS}, true
}
