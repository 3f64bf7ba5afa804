package jobs

import (
	"fmt"
	"math"
	"time"

	"github.com/routelab/routelab/router"
)

// RecalibrateOptions tune the recalibration.
type RecalibrateOptions struct {
	// PriorWeight pulls each fine bin's observed rate towards its own P by
	// this much inverse-propensity weight; default 20.
	PriorWeight float64
	// MinRows is the fewest fit rows a model needs to get a new map; models
	// with fewer keep their calibration. Default 200.
	MinRows float64
	// Version names the candidate; empty derives it from the content.
	Version string
	// Name of the candidate policy; default the live policy's name.
	Name string
}

func (o RecalibrateOptions) defaults() RecalibrateOptions {
	if o.PriorWeight <= 0 {
		o.PriorWeight = 20
	}
	if o.MinRows <= 0 {
		o.MinRows = 200
	}
	return o
}

// ModelRecal is one model's part of a recalibration report.
type ModelRecal struct {
	Model   string      `json:"model"`
	FitRows float64     `json:"fit_rows"`
	Holdout float64     `json:"holdout_rows"`
	Before  Calibration `json:"before"`
	After   Calibration `json:"after"`
	Changed bool        `json:"changed"`
	Reason  string      `json:"reason,omitempty"` // why unchanged
	Map     Map         `json:"map"`
}

// RecalReport is the outcome of jobs recalibrate.
type RecalReport struct {
	Job string `json:"job"`
	// Mode is "recalibrate" (new calibration maps on the live classifier)
	// or "refit" (a new classifier trained on the window: the live policy
	// has no classifier, or --refit).
	Mode          string                                 `json:"mode"`
	Parent        string                                 `json:"parent_version"`
	PolicyVersion string                                 `json:"policy_version"`
	Window        Window                                 `json:"window"`
	Rows          float64                                `json:"rows"`
	HoldoutRows   float64                                `json:"holdout_rows"`
	ECEBefore     float64                                `json:"ece_before"`
	ECEAfter      float64                                `json:"ece_after"`
	BrierBefore   float64                                `json:"brier_before"`
	BrierAfter    float64                                `json:"brier_after"`
	Models        []ModelRecal                           `json:"models"`
	Thresholds    map[router.Tier]float64                `json:"thresholds"`
	Frontier      map[router.Tier][]router.FrontierPoint `json:"frontier,omitempty"`
	Out           string                                 `json:"out,omitempty"`
	ElapsedMS     int64                                  `json:"elapsed_ms"`
	// Note says how to read the figures when "before" is not a classifier's.
	Note string `json:"note,omitempty"`
}

// ErrNoClassifier: a rules-only policy has no calibrated P to recalibrate.
var ErrNoClassifier = fmt.Errorf("live policy has no classifier to recalibrate")

// Recalibrate fits, per model, a monotone map from the live policy's logged
// calibrated P to the observed (inverse-propensity weighted) success rate on
// the fit rows, composes it with the model's calibrator, and reports ECE and
// Brier before and after on the held-out rows. The candidate keeps
// everything else of the live policy; its parent, window and metrics are
// recorded in it. Thresholds are re-chosen separately (ChooseThresholds).
func Recalibrate(live *router.Policy, bins []CalBin, w Window, opt RecalibrateOptions) (*router.Policy, RecalReport, error) {
	opt = opt.defaults()
	rep := RecalReport{Job: "recalibrate", Mode: "recalibrate", Parent: live.Version, Window: w}
	if live.Classifier == nil {
		return nil, rep, ErrNoClassifier
	}
	byModel := map[string][]CalBin{}
	for _, b := range bins {
		byModel[b.Model] = append(byModel[b.Model], b)
	}
	cand := clonePolicy(live)
	if cand.Calibration == nil {
		cand.Calibration = map[string]router.Calibrator{}
	}
	var allHold []CalBin
	var mapped []CalBin // holdout bins with P replaced by the new map, for pooled metrics
	for _, m := range live.Models {
		mb := byModel[m.Name]
		var fit, hold []CalBin
		mr := ModelRecal{Model: m.Name}
		for _, b := range mb {
			if b.Holdout {
				hold = append(hold, b)
				mr.Holdout += b.N
			} else {
				fit = append(fit, b)
				mr.FitRows += b.N
			}
		}
		rep.Rows += mr.FitRows + mr.Holdout
		rep.HoldoutRows += mr.Holdout
		mr.Before = Evaluate(hold, nil)
		allHold = append(allHold, hold...)
		if mr.FitRows < opt.MinRows {
			mr.Reason = fmt.Sprintf("%.0f fit rows, need %.0f", mr.FitRows, opt.MinRows)
			mr.After = mr.Before
			mapped = append(mapped, hold...)
			rep.Models = append(rep.Models, mr)
			continue
		}
		mr.Map = FitMap(fit, opt.PriorWeight)
		mr.After = Evaluate(hold, mr.Map.Apply)
		mr.Changed = true
		cand.Calibration[m.Name] = compose(live.Calibration[m.Name], mr.Map)
		for _, b := range hold {
			p := mr.Map.Apply(b.MeanP())
			nb := b
			nb.WP = p * b.W
			nb.WPP = p * p * b.W
			nb.WYP = p * b.WY
			mapped = append(mapped, nb)
		}
		rep.Models = append(rep.Models, mr)
	}
	before, after := Evaluate(allHold, nil), Evaluate(mapped, nil)
	rep.ECEBefore, rep.BrierBefore = before.ECE, before.Brier
	rep.ECEAfter, rep.BrierAfter = after.ECE, after.Brier
	cand.Name = live.Name
	if opt.Name != "" {
		cand.Name = opt.Name
	}
	cand.Version = opt.Version
	cand.TrainingWindow = &router.TrainingWindow{FromTS: w.From.UnixMilli(), ToTS: w.To.UnixMilli(), Events: int(rep.Rows), Source: "recalibrate:" + live.Version}
	met := router.Metrics{ECE: after.ECE, Brier: after.Brier, Holdout: int(rep.HoldoutRows)}
	if live.Metrics != nil {
		met.Frontier = live.Metrics.Frontier
		met.RuleAudit = live.Metrics.RuleAudit
	}
	for _, mr := range rep.Models {
		met.PerModel = append(met.PerModel, router.ModelMetrics{Model: mr.Model, Train: int(mr.FitRows), Holdout: int(mr.Holdout), Calibrator: "isotonic", Brier: mr.After.Brier, ECEIso: mr.After.ECE})
	}
	cand.Metrics = &met
	return cand, rep, nil
}

// Parent is recorded in the policy's training window source as
// "recalibrate:<parent version>"; ParentOf reads it back.
func ParentOf(p *router.Policy) string {
	if p.TrainingWindow == nil {
		return ""
	}
	const pre = "recalibrate:"
	if len(p.TrainingWindow.Source) > len(pre) && p.TrainingWindow.Source[:len(pre)] == pre {
		return p.TrainingWindow.Source[len(pre):]
	}
	return ""
}

// compose returns an isotonic calibrator equal to m(old(z)), with knots on a
// grid of raw scores fine enough that the interpolation error is below the
// noise of the map itself.
func compose(old router.Calibrator, m Map) router.Calibrator {
	const lo, hi, step = -12.0, 12.0, 0.05
	var xs, ys []float64
	for z := lo; z <= hi+1e-9; z += step {
		y := m.Apply(old.Apply(z))
		if n := len(ys); n > 0 && y < ys[n-1] {
			y = ys[n-1] // keep it monotone whatever the old map does
		}
		// drop knots in the middle of a flat run: same y as both neighbours
		if n := len(ys); n >= 2 && ys[n-1] == y && ys[n-2] == y {
			xs[n-1] = z
			continue
		}
		xs = append(xs, math.Round(z*1000)/1000)
		ys = append(ys, y)
	}
	return router.Calibrator{Kind: "isotonic", X: xs, Y: ys}
}

// clonePolicy deep-copies what Recalibrate and ChooseThresholds change and
// shares the rest (models, classifier weights are never mutated).
func clonePolicy(p *router.Policy) *router.Policy {
	q := *p
	q.Checksum = ""
	q.Calibration = make(map[string]router.Calibrator, len(p.Calibration))
	for k, v := range p.Calibration {
		q.Calibration[k] = v
	}
	q.Thresholds = make(map[router.Tier]float64, len(p.Thresholds))
	for k, v := range p.Thresholds {
		q.Thresholds[k] = v
	}
	q.Rules = append([]router.Rule(nil), p.Rules...)
	return &q
}

func since(t time.Time) int64 { return time.Since(t).Milliseconds() }
