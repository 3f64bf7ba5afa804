package router

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// PolicyDiff is what differs between two policies.
type PolicyDiff struct {
	// Changes lists the differences in settings, thresholds, rules, models
	// and calibrators, one line each, sorted.
	Changes []string
	// WeightL2 is, per model both classifiers score with weights of the
	// same length, the L2 distance between the weight vectors.
	WeightL2 map[string]float64
}

// Diff compares policy a with policy b.
func Diff(a, b *Policy) PolicyDiff {
	var changes []string
	add := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }
	if a.Version != b.Version {
		add("version: %s -> %s", a.Version, b.Version)
	}
	if a.Epsilon != b.Epsilon {
		add("epsilon: %g -> %g", a.Epsilon, b.Epsilon)
	}
	if a.EditDepthLimit != b.EditDepthLimit {
		add("edit_depth_limit: %d -> %d", a.EditDepthLimit, b.EditDepthLimit)
	}
	if a.DefaultModel != b.DefaultModel {
		add("default_model: %s -> %s", a.DefaultModel, b.DefaultModel)
	}
	for _, t := range []Tier{TierDraft, TierStandard, TierPremium} {
		if a.Thresholds[t] != b.Thresholds[t] {
			add("threshold %s: %.2f -> %.2f", t, a.Thresholds[t], b.Thresholds[t])
		}
	}
	ruleSet := func(p *Policy) map[string]string {
		m := map[string]string{}
		for _, r := range p.Rules {
			j, _ := json.Marshal(r)
			m[r.Name] = string(j)
		}
		return m
	}
	ra, rb := ruleSet(a), ruleSet(b)
	for n, j := range ra {
		if k, ok := rb[n]; !ok {
			add("rule removed: %s", n)
		} else if k != j {
			add("rule changed: %s", n)
		}
	}
	for n := range rb {
		if _, ok := ra[n]; !ok {
			add("rule added: %s", n)
		}
	}
	ma, mb := map[string]bool{}, map[string]bool{}
	for _, m := range a.Models {
		ma[m.Name] = true
	}
	for _, m := range b.Models {
		mb[m.Name] = true
		if !ma[m.Name] {
			add("model added: %s", m.Name)
		}
	}
	for _, m := range a.Models {
		if !mb[m.Name] {
			add("model removed: %s", m.Name)
		}
	}
	weightL2 := map[string]float64{}
	if a.Classifier != nil && b.Classifier != nil {
		for m, wa := range a.Classifier.Weights {
			if wb, ok := b.Classifier.Weights[m]; ok && len(wa) == len(wb) {
				s := 0.0
				for i := range wa {
					s += (wa[i] - wb[i]) * (wa[i] - wb[i])
				}
				weightL2[m] = math.Sqrt(s)
			}
			if a.Calibration[m].Kind != b.Calibration[m].Kind {
				add("calibrator %s: %s -> %s", m, a.Calibration[m].Kind, b.Calibration[m].Kind)
			}
		}
	} else if (a.Classifier == nil) != (b.Classifier == nil) {
		add("classifier: present %v -> %v", a.Classifier != nil, b.Classifier != nil)
	}
	sort.Strings(changes)
	return PolicyDiff{Changes: changes, WeightL2: weightL2}
}

// RouteMoves decides every request under a and under b and counts those
// whose greedy model differs, by "from -> to".
func RouteMoves(reqs []Request, a, b *Policy) (differ int, moves map[string]int) {
	moves = map[string]int{}
	for i := range reqs {
		da, db := Decide(reqs[i], a, nil), Decide(reqs[i], b, nil)
		if da.Greedy != db.Greedy {
			differ++
			moves[da.Greedy+" -> "+db.Greedy]++
		}
	}
	return differ, moves
}
