package jobs

import (
	"fmt"
	"math"
	"sort"

	"github.com/routelab/routelab/router"
)

// Cand is one model as a logged decision scored it.
type Cand struct {
	Model    string
	P        float64 // the logging policy's calibrated P
	Cost     float64
	Eligible bool
}

// Row is one labelled decision with the candidates it was chosen among: what
// the rule audit, the threshold search and (in process) the calibration
// bins are computed from. Rows come from a source (CalibrationSource.Rows,
// a sample).
type Row struct {
	ID         string
	Tier       router.Tier
	Rule       string // rule that decided, "" for the classifier
	Model      string
	Propensity float64
	Y          float64
	Cands      []Cand
	LatencyMS  float64 // first attempt's latency (0 when unknown)
	// HoldoutSet marks rows whose split the source decided (ClickHouse
	// computes it in the query) rather than Holdout(ID).
	HoldoutSet, HoldoutVal bool
}

// Holdout is the row's split: one row in five, by Holdout of the id (the
// same split ClickHouse computes) unless the source set it.
func (r Row) Holdout() bool {
	if r.HoldoutSet {
		return r.HoldoutVal
	}
	return Holdout(r.ID)
}

func (r Row) chosenP() (float64, bool) {
	for _, c := range r.Cands {
		if c.Model == r.Model {
			return c.P, true
		}
	}
	return 0, false
}

// BinsFromRows aggregates rows the way CalibrationSource.CalibrationBins
// does (jobs/chsource in ClickHouse, jobs/memsource with this).
func BinsFromRows(rows []Row) []CalBin {
	type key struct {
		m    string
		b    int
		hold bool
	}
	acc := map[key]*CalBin{}
	for _, r := range rows {
		p, ok := r.chosenP()
		if !ok || r.Propensity <= 0 {
			continue
		}
		k := key{r.Model, min(int(math.Floor(p*100)), 99), r.Holdout()}
		b := acc[k]
		if b == nil {
			b = &CalBin{Model: k.m, Bin: k.b, Holdout: k.hold}
			acc[k] = b
		}
		w := 1 / r.Propensity
		b.N++
		b.W += w
		b.WY += w * r.Y
		b.WP += w * p
		b.WPP += w * p * p
		b.WYP += w * r.Y * p
	}
	out := make([]CalBin, 0, len(acc))
	for _, b := range acc {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Model != out[j].Model {
			return out[i].Model < out[j].Model
		}
		if out[i].Bin != out[j].Bin {
			return out[i].Bin < out[j].Bin
		}
		return !out[i].Holdout && out[j].Holdout
	})
	return out
}

// CandidateOptions tune how a candidate is built from the live policy.
type CandidateOptions struct {
	Recalibrate RecalibrateOptions
	// Thresholds: the threshold search's options; a nil Slack is
	// RecalibrationSlack.
	Thresholds router.ThresholdOptions
	// Audit tunes the rule audit (router.AuditRules: doubly robust
	// estimates of the rule's success and of the recalibrated classifier's
	// own choice on the requests the rule decided).
	Audit router.AuditOptions
	// KeepThresholds keeps the live policy's thresholds (the frontier is
	// still computed and reported).
	KeepThresholds bool
	// Epsilon is the candidate's exploration; 0 keeps the live policy's.
	// It differs when the window was logged with more exploration than the
	// candidate should serve with (the lab widens it while it gathers a
	// window after an alarm).
	Epsilon float64
}

// RecalibrationSlack is the threshold search's slack when a candidate is
// built from the live policy: draft 3 points, standard 1, premium 0. It is
// tighter than training's (router.DefaultSlack): a candidate is usually
// built because outcomes moved, and it favours success over cost; these
// were the job's tolerances before the search was shared with training.
func RecalibrationSlack() map[router.Tier]float64 {
	return map[router.Tier]float64{router.TierDraft: 0.03, router.TierStandard: 0.01, router.TierPremium: 0}
}

// CandidateReport extends the recalibration report with the rule audit.
type CandidateReport struct {
	RecalReport
	Rules        []router.RuleAudit `json:"rule_audit"`
	DroppedRules []string           `json:"dropped_rules"`
}

// BuildCandidate makes the candidate policy from the live one: calibration
// maps fitted on bins (from a source),
// then on the rows the rule audit and the threshold search with the new
// maps, then sealed. It never changes the classifier weights.
func BuildCandidate(live *router.Policy, bins []CalBin, rows []Row, w Window, opt CandidateOptions) (*router.Policy, CandidateReport, error) {
	cand, rr, err := Recalibrate(live, bins, w, opt.Recalibrate)
	rep := CandidateReport{RecalReport: rr, DroppedRules: []string{}}
	if err != nil {
		return nil, rep, err
	}
	maps := map[string]Map{}
	for _, m := range rr.Models {
		if m.Changed {
			maps[m.Model] = m.Map
		}
	}
	mapP := func(model string, p float64) float64 {
		if m, ok := maps[model]; ok {
			return m.Apply(p)
		}
		return p
	}
	// threshold search over classifier-decided rows (rules decide the rest)
	var choices []router.Choice
	var audit []router.AuditRow
	for _, r := range rows {
		if r.Holdout() {
			continue // held out for the before/after metrics and OPE
		}
		if r.Rule == "" {
			choices = append(choices, toChoice(r, mapP))
			continue
		}
		audit = append(audit, router.AuditRow{Rule: r.Rule, Model: r.Model, W: 1 / r.Propensity, Y: r.Y, Choice: toChoice(r, mapP)})
	}
	if opt.Thresholds.Slack == nil {
		opt.Thresholds.Slack = RecalibrationSlack()
	}
	thr, curves := router.ChooseThresholds(choices, live.Thresholds, opt.Thresholds)
	if opt.KeepThresholds {
		thr = cand.Thresholds
	}
	cand.Thresholds = thr
	rep.Thresholds = thr
	rep.Frontier = curves
	cand.Rules, rep.Rules = router.AuditRules(cand.Rules, audit, thr, opt.Audit)
	if len(cand.Rules) == 0 {
		cand.Rules = nil
	}
	for _, a := range rep.Rules {
		if !a.Kept {
			rep.DroppedRules = append(rep.DroppedRules, a.Rule)
		}
	}
	if opt.Epsilon > 0 {
		cand.Epsilon = opt.Epsilon
	}
	if cand.Metrics != nil {
		cand.Metrics.RuleAudit = rep.Rules
		cand.Metrics.Frontier = map[router.Tier][]router.FrontierPoint{}
		for t, c := range curves {
			cand.Metrics.Frontier[t] = router.Frontier(c)
		}
	}
	if err := cand.Seal(); err != nil {
		return nil, rep, fmt.Errorf("seal candidate: %w", err)
	}
	rep.PolicyVersion = cand.Version
	return cand, rep, nil
}

// toChoice is a row's candidates as the threshold search and the rule audit
// replay them, with P through the recalibration maps.
func toChoice(r Row, mapP func(string, float64) float64) router.Choice {
	c := router.Choice{Tier: r.Tier, W: 1, P: make([]float64, len(r.Cands)), Cost: make([]float64, len(r.Cands)),
		Eligible: make([]bool, len(r.Cands)), Models: make([]string, len(r.Cands))}
	if c.Tier == "" {
		c.Tier = router.TierStandard
	}
	for i, k := range r.Cands {
		c.P[i] = mapP(k.Model, k.P)
		c.Cost[i] = k.Cost
		c.Eligible[i] = k.Eligible
		c.Models[i] = k.Model
	}
	return c
}
