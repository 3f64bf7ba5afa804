package router_test

import (
	"math"
	"testing"

	"github.com/routelab/routelab/router"
)

// TestAuditRules, hand-computed. Every request has candidates m0 (P 0.6,
// $1) and m1 (P 0.9, $4); at the standard threshold 0.85 the classifier
// picks m1. All rules route to m0. Per request the doubly robust terms are
// RuleP = 0.6 + W(y - 0.6) when m0 was called, else 0.6; ClassP = 0.9 +
// W(y - 0.9) when m1 was called, else 0.9.
//
//	"good": 200 calls of m0 at W 1, 180 succeed: RuleP = 0.90, ClassP 0.90: kept;
//	"bad": 200 calls of m0, 160 succeed: RuleP 0.80 < 0.90 - 0.01: dropped;
//	"few": 100 calls of m0, 10 succeed: too few to judge (MinRows 200): kept;
//	"explored-wins": 100 calls of m0 at W 2 all succeed (RuleP 1.4 each,
//	  ClassP 0.9) and 100 of m1 at W 2 all fail (RuleP 0.6, ClassP -0.9):
//	  RuleP 1.0, ClassP 0.0: kept;
//	"explored-loses": the outcomes reversed: RuleP 0.0, ClassP 1.0: dropped.
func TestAuditRules(t *testing.T) {
	choice := router.Choice{Tier: router.TierStandard, P: []float64{0.6, 0.9}, Cost: []float64{1, 4}, Models: []string{"m0", "m1"}}
	var rows []router.AuditRow
	add := func(rule, model string, n, succ int, w float64) {
		for i := range n {
			y := 0.0
			if i < succ {
				y = 1
			}
			rows = append(rows, router.AuditRow{Rule: rule, Model: model, W: w, Y: y, Choice: choice})
		}
	}
	add("good", "m0", 200, 180, 1)
	add("bad", "m0", 200, 160, 1)
	add("few", "m0", 100, 10, 1)
	add("explored-wins", "m0", 100, 100, 2)
	add("explored-wins", "m1", 100, 0, 2)
	add("explored-loses", "m0", 100, 0, 2)
	add("explored-loses", "m1", 100, 100, 2)
	// a request whose candidates lack the rule's model says nothing
	rows = append(rows, router.AuditRow{Rule: "good", Model: "m1", W: 1, Choice: router.Choice{P: []float64{0.9}, Cost: []float64{4}, Models: []string{"m1"}}})
	var rules []router.Rule
	for _, name := range []string{"good", "bad", "few", "explored-wins", "explored-loses"} {
		rules = append(rules, router.Rule{Name: name, Model: "m0"})
	}
	kept, audit := router.AuditRules(rules, rows, map[router.Tier]float64{router.TierStandard: 0.85}, router.AuditOptions{})
	want := map[string]struct {
		kept          bool
		matched       int
		ruleP, classP float64
	}{
		"good": {true, 200, 0.9, 0.9}, "bad": {false, 200, 0.8, 0.9}, "few": {true, 100, 0.1, 0.9},
		"explored-wins": {true, 200, 1, 0}, "explored-loses": {false, 200, 0, 1},
	}
	for _, a := range audit {
		w := want[a.Rule]
		if a.Kept != w.kept || a.Matched != w.matched || math.Abs(a.RuleP-w.ruleP) > 1e-9 || math.Abs(a.ClassP-w.classP) > 1e-9 || a.RuleCost != 1 || a.ClassCost != 4 {
			t.Errorf("audit %s = %+v, want kept %v matched %d rule_p %v classifier_p %v, costs 1 and 4", a.Rule, a, w.kept, w.matched, w.ruleP, w.classP)
		}
	}
	if len(audit) != len(rules) {
		t.Errorf("%d audits, want one per rule (%d)", len(audit), len(rules))
	}
	if len(kept) != 3 || kept[0].Name != "good" || kept[1].Name != "few" || kept[2].Name != "explored-wins" {
		t.Errorf("kept = %v, want good, few, explored-wins", kept)
	}
}
