package jobs

import (
	"fmt"
	"hash/fnv"
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
// bins are computed from. Rows come from ClickHouse (Store.Rows, a sample)
// or, in the lab, straight from the simulated loop.
type Row struct {
	ID         string
	Tier       router.Tier
	Rule       string // rule that decided, "" for the classifier
	Model      string
	Propensity float64
	Y          float64
	Cands      []Cand
	LatencyMS  float64 // first attempt's latency (0 when unknown)
	// HoldoutSet marks rows whose split was decided by ClickHouse
	// (cityHash64) rather than in process.
	HoldoutSet, HoldoutVal bool
}

// Holdout is the row's split: one row in five, by cityHash64 of the id in
// ClickHouse or an FNV hash of it in process.
func (r Row) Holdout() bool {
	if r.HoldoutSet {
		return r.HoldoutVal
	}
	h := fnv.New64a()
	h.Write([]byte(r.ID))
	return h.Sum64()%HoldoutMod == 0
}

func (r Row) chosenP() (float64, bool) {
	for _, c := range r.Cands {
		if c.Model == r.Model {
			return c.P, true
		}
	}
	return 0, false
}

// BinsFromRows aggregates rows the way Store.CalibrationBins does in
// ClickHouse.
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
	Thresholds  ThresholdOptions
	// RuleMargin: a rule is dropped when its model's observed success on
	// the requests it decided is below the recalibrated classifier's
	// expected success on the same requests by more than this; default 0.03.
	RuleMargin float64
	// RuleMinRows: fewest rule-decided rows before a rule is judged;
	// default 200.
	RuleMinRows int
	// KeepThresholds keeps the live policy's thresholds (the frontier is
	// still computed and reported).
	KeepThresholds bool
}

// CandidateReport extends the recalibration report with the rule audit.
type CandidateReport struct {
	RecalReport
	Rules        []router.RuleAudit `json:"rule_audit"`
	DroppedRules []string           `json:"dropped_rules"`
}

// BuildCandidate makes the candidate policy from the live one: calibration
// maps fitted on bins (computed by ClickHouse, or BinsFromRows in the lab),
// then on the rows the rule audit and the threshold search with the new
// maps, then sealed. It never changes the classifier weights.
func BuildCandidate(live *router.Policy, bins []CalBin, rows []Row, w Window, opt CandidateOptions) (*router.Policy, CandidateReport, error) {
	if opt.RuleMargin <= 0 {
		opt.RuleMargin = 0.03
	}
	if opt.RuleMinRows <= 0 {
		opt.RuleMinRows = 200
	}
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
	var choices []Choice
	byRule := map[string][]Row{}
	for _, r := range rows {
		if r.Holdout() {
			continue // held out for the before/after metrics and OPE
		}
		if r.Rule != "" {
			byRule[r.Rule] = append(byRule[r.Rule], r)
			continue
		}
		choices = append(choices, toChoice(r, mapP))
	}
	thr, front := ChooseThresholds(choices, live.Thresholds, opt.Thresholds)
	if opt.KeepThresholds {
		thr = cand.Thresholds
	}
	cand.Thresholds = thr
	rep.Thresholds = thr
	rep.Frontier = front
	// rule audit: the rule's observed success against what the
	// recalibrated classifier expects of its own choice on the same rows
	var kept []router.Rule
	for _, rule := range cand.Rules {
		ra := router.RuleAudit{Rule: rule.Name, Kept: true}
		var ys, costs, cp, cc float64
		var n float64
		for _, r := range byRule[rule.Name] {
			if r.Model != rule.Model {
				continue // explored away from the rule: says nothing about it
			}
			c := toChoice(r, mapP)
			i := pick(c, tierThreshold(thr, r.Tier))
			if i < 0 {
				continue
			}
			n++
			ys += r.Y
			for _, k := range r.Cands {
				if k.Model == rule.Model {
					costs += k.Cost
				}
			}
			cp += c.P[i]
			cc += c.Cost[i]
		}
		ra.Matched = int(n)
		if n > 0 {
			ra.RuleP, ra.RuleCost, ra.ClassP, ra.ClassCost = ys/n, costs/n, cp/n, cc/n
		}
		if int(n) >= opt.RuleMinRows && ra.RuleP < ra.ClassP-opt.RuleMargin {
			ra.Kept = false
			rep.DroppedRules = append(rep.DroppedRules, rule.Name)
		} else {
			kept = append(kept, rule)
		}
		rep.Rules = append(rep.Rules, ra)
	}
	cand.Rules = kept
	if cand.Metrics != nil {
		cand.Metrics.RuleAudit = rep.Rules
		cand.Metrics.Frontier = front
	}
	if err := cand.Seal(); err != nil {
		return nil, rep, fmt.Errorf("seal candidate: %w", err)
	}
	rep.PolicyVersion = cand.Version
	return cand, rep, nil
}

func tierThreshold(thr map[router.Tier]float64, t router.Tier) float64 {
	if t == "" {
		t = router.TierStandard
	}
	if v, ok := thr[t]; ok {
		return v
	}
	return map[router.Tier]float64{router.TierDraft: 0.8, router.TierStandard: 0.85, router.TierPremium: 0.9}[t]
}

func toChoice(r Row, mapP func(string, float64) float64) Choice {
	c := Choice{Tier: r.Tier, W: 1, P: make([]float64, len(r.Cands)), Cost: make([]float64, len(r.Cands)), Eligible: make([]bool, len(r.Cands))}
	if c.Tier == "" {
		c.Tier = router.TierStandard
	}
	for i, k := range r.Cands {
		c.P[i] = mapP(k.Model, k.P)
		c.Cost[i] = k.Cost
		c.Eligible[i] = k.Eligible
	}
	return c
}
