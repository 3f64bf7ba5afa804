package router

import "slices"

// AuditRow is one logged request a rule decided, as the rule audit reads
// it: the model called, with what inverse propensity, how it went, and
// every candidate as the classifier scores it.
type AuditRow struct {
	Rule   string  // the rule that decided the request
	Model  string  // the model called (the rule's, or another one explored)
	W      float64 // inverse propensity of the call (clipped, if the caller clips)
	Y      float64 // outcome of the call, 1 success or 0
	Choice Choice  // calibrated P, price and eligibility of every candidate, with Models
}

// AuditOptions tune the rule audit.
type AuditOptions struct {
	// Margin: how far the rule's estimated success may fall below the
	// classifier's before the rule is dropped; default 0.01.
	Margin float64
	// MinRows: fewest requests a rule must have decided before it is
	// judged; default 200.
	MinRows int
}

func (o AuditOptions) defaults() AuditOptions {
	if o.Margin <= 0 {
		o.Margin = 0.01
	}
	if o.MinRows <= 0 {
		o.MinRows = 200
	}
	return o
}

// AuditRules is the rule audit of training and of the jobs' recalibration,
// with one criterion. A rule is judged on the logged requests it decided,
// whatever model was called on them. On those requests it compares two
// estimates of success, both doubly robust (the estimator of the OPE gate,
// with the calibrated classifier as the reward model):
//
//   - RuleP, of sending every such request to the rule's model: per
//     request the model's calibrated P, plus, where that model was the one
//     called, W * (outcome - P);
//   - ClassP, of letting the classifier choose (Pick at the tier's
//     threshold from thresholds, DefaultThresholds for a tier it lacks):
//     the chosen model's P, plus W * (outcome - P) where it was called.
//
// The rule is dropped when it decided at least MinRows requests and RuleP
// < ClassP - Margin; otherwise it is kept: a hand-written rule stands until
// the data says it loses. The correction terms are what let the audit see
// what the classifier's calibration misses on the rule's slice (a model
// better or worse there than its P says). RuleCost and ClassCost are the
// mean prices of the two choices. It returns the kept rules in their order
// and one audit per rule.
func AuditRules(rules []Rule, rows []AuditRow, thresholds map[Tier]float64, opt AuditOptions) ([]Rule, []RuleAudit) {
	opt = opt.defaults()
	def := DefaultThresholds()
	threshold := func(t Tier) float64 {
		if t == "" {
			t = TierStandard
		}
		if v, ok := thresholds[t]; ok {
			return v
		}
		return def[t]
	}
	byRule := map[string][]*AuditRow{}
	for i := range rows {
		byRule[rows[i].Rule] = append(byRule[rows[i].Rule], &rows[i])
	}
	kept := []Rule{}
	audit := make([]RuleAudit, 0, len(rules))
	for _, rule := range rules {
		a := RuleAudit{Rule: rule.Name, Kept: true}
		for _, r := range byRule[rule.Name] {
			c := &r.Choice
			ri := slices.Index(c.Models, rule.Model)
			ci := c.Pick(threshold(c.Tier))
			if ri < 0 || ci < 0 {
				continue
			}
			a.Matched++
			a.RuleP += c.P[ri]
			a.ClassP += c.P[ci]
			if r.Model == rule.Model {
				a.RuleP += r.W * (r.Y - c.P[ri])
			}
			if r.Model == c.Models[ci] {
				a.ClassP += r.W * (r.Y - c.P[ci])
			}
			a.RuleCost += c.Cost[ri]
			a.ClassCost += c.Cost[ci]
		}
		if a.Matched > 0 {
			n := float64(a.Matched)
			a.RuleP, a.RuleCost, a.ClassP, a.ClassCost = a.RuleP/n, a.RuleCost/n, a.ClassP/n, a.ClassCost/n
		}
		if a.Matched >= opt.MinRows && a.RuleP < a.ClassP-opt.Margin {
			a.Kept = false
		} else {
			kept = append(kept, rule)
		}
		audit = append(audit, a)
	}
	return kept, audit
}

// auditRows turns held-out examples into the rule audit's rows: each
// example goes to the first candidate rule that matches it with its model
// eligible (the rule Decide would follow), scored under pol, which has no
// rules yet. Rules that do not compile against the catalog are returned
// apart: they can never be kept.
func auditRows(pol *Policy, ex []*Example, rules []Rule, w func(*Example) float64) ([]AuditRow, map[string]bool) {
	c := pol.c
	idx := map[string]int{}
	for i, m := range c.models {
		idx[m.Name] = i
	}
	var crs []compiledRule
	bad := map[string]bool{}
	for _, r := range rules {
		cr, err := compileRule(r, idx)
		if err != nil {
			bad[r.Name] = true
			continue
		}
		crs = append(crs, cr)
	}
	var rows []AuditRow
	var f Features
	for _, e := range ex {
		req := &e.Req
		Extract(req, req.EditDepth, &f)
		t := tierIndex(req.Tier)
		for k := range crs {
			cr := &crs[k]
			if !cr.matches(req, &f) {
				continue
			}
			if _, reason := c.check(cr.model, req, t, nil); reason != "" {
				continue
			}
			cs := choices(pol, []*Request{req})
			if len(cs) == 0 {
				break
			}
			y := 0.0
			if e.Success {
				y = 1
			}
			rows = append(rows, AuditRow{Rule: cr.name, Model: e.Model, W: w(e), Y: y, Choice: cs[0]})
			break
		}
	}
	return rows, bad
}
