package router

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
