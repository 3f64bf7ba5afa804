package router

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

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
	// success is within Slack of the best threshold's (ChooseThresholds);
	// nil: DefaultSlack.
	Slack map[Tier]float64
	// Audit tunes the rule audit (AuditRules).
	Audit AuditOptions
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
		c.Slack = DefaultSlack()
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
	var holdEx []*Example
	for i := range ex {
		if sp[i] != 0 {
			hold = append(hold, &ex[i].Req)
			holdEx = append(holdEx, &ex[i])
		}
	}
	thr, curves := ChooseThresholds(choices(pol, hold), DefaultThresholds(), ThresholdOptions{Slack: cfg.Slack})
	pol.Thresholds = thr
	for t, c := range curves {
		pol.Metrics.Frontier[t] = Frontier(c)
	}
	if err := pol.Compile(); err != nil {
		return nil, err
	}
	rows, bad := auditRows(pol, holdEx, cfg.Rules, func(e *Example) float64 {
		if cfg.Unweighted {
			return 1
		}
		return math.Min(1/e.Propensity, cfg.MaxWeight)
	})
	var audited []Rule
	for _, r := range cfg.Rules {
		if !bad[r.Name] {
			audited = append(audited, r)
		}
	}
	pol.Rules, pol.Metrics.RuleAudit = AuditRules(audited, rows, pol.Thresholds, cfg.Audit)
	if len(pol.Rules) == 0 {
		pol.Rules = nil
	}
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
