package router

import (
	"math"
	"sort"
)

// Choice is one request as the threshold search and the rule audit replay
// it: per candidate model its calibrated P, its price and whether it may
// serve the request, indexed alike.
type Choice struct {
	Tier     Tier
	W        float64 // weight of the request (inverse propensity, or 1); 0 counts as 1
	P        []float64
	Cost     []float64
	Eligible []bool   // nil: every candidate is eligible
	Models   []string // the candidates' names (the rule audit needs them)
}

// Pick is Pick on the request's candidates.
func (c *Choice) Pick(threshold float64) int { return Pick(c.P, c.Cost, c.Eligible, threshold) }

func (c *Choice) weight() float64 {
	if c.W > 0 {
		return c.W
	}
	return 1
}

// DefaultThresholds are the per-tier thresholds of a policy that sets
// none (Compile) and of a tier the threshold search has no requests for.
func DefaultThresholds() map[Tier]float64 {
	return map[Tier]float64{TierDraft: 0.8, TierStandard: 0.85, TierPremium: 0.9}
}

// DefaultSlack is how much expected success per tier the threshold search
// gives up for a cheaper threshold: draft 3 points, standard 1.2, premium 0.4.
func DefaultSlack() map[Tier]float64 {
	return map[Tier]float64{TierDraft: 0.03, TierStandard: 0.012, TierPremium: 0.004}
}

// ThresholdGrid is the default grid of the threshold search, 0.50 to 1.00
// by 0.01. It ends at 1.00, where (short of a P of exactly 1) Pick takes
// the most likely model: the best expected success a threshold can give,
// which the slack is measured from.
func ThresholdGrid() []float64 {
	g := make([]float64, 0, 51)
	for t := 50; t <= 100; t++ {
		g = append(g, float64(t)/100)
	}
	return g
}

// ThresholdOptions say how the threshold search picks a tier's threshold.
type ThresholdOptions struct {
	// Slack per tier: the chosen threshold is the cheapest whose expected
	// success is within Slack of the best on the grid. Nil: DefaultSlack.
	Slack map[Tier]float64
	Grid  []float64 // nil: ThresholdGrid
}

// ChooseThresholds is the threshold search of training and of the jobs'
// recalibration. Per tier, for each threshold of the grid, it replays Pick
// on every request of the tier and records the weighted mean calibrated
// success and cost of the picks (the curve); the chosen threshold is the
// cheapest point within the tier's slack of the best success, the lowest
// threshold among equally cheap ones. It returns the chosen thresholds
// (tiers without requests keep fallback's value, if any) and per tier the
// curve, every grid point, the chosen one marked.
func ChooseThresholds(rows []Choice, fallback map[Tier]float64, opt ThresholdOptions) (map[Tier]float64, map[Tier][]FrontierPoint) {
	if opt.Slack == nil {
		opt.Slack = DefaultSlack()
	}
	if opt.Grid == nil {
		opt.Grid = ThresholdGrid()
	}
	chosen := make(map[Tier]float64, 3)
	for k, v := range fallback {
		chosen[k] = v
	}
	curves := map[Tier][]FrontierPoint{}
	byTier := map[Tier][]*Choice{}
	for i := range rows {
		t := rows[i].Tier
		if t == "" {
			t = TierStandard
		}
		byTier[t] = append(byTier[t], &rows[i])
	}
	for _, tier := range []Tier{TierDraft, TierStandard, TierPremium} {
		rs := byTier[tier]
		pts := make([]FrontierPoint, 0, len(opt.Grid))
		best := math.Inf(-1)
		for _, t := range opt.Grid {
			var sw, ss, sc float64
			for _, r := range rs {
				i := r.Pick(t)
				if i < 0 {
					continue
				}
				w := r.weight()
				sw += w
				ss += w * r.P[i]
				sc += w * r.Cost[i]
			}
			if sw == 0 {
				continue
			}
			pt := FrontierPoint{Threshold: t, Success: ss / sw, CostUSD: sc / sw}
			best = math.Max(best, pt.Success)
			pts = append(pts, pt)
		}
		if len(pts) == 0 {
			continue
		}
		bi := -1
		for i, pt := range pts {
			if pt.Success < best-opt.Slack[tier]-1e-12 {
				continue
			}
			if bi < 0 || pt.CostUSD < pts[bi].CostUSD-1e-12 {
				bi = i
			}
		}
		pts[bi].Chosen = true
		chosen[tier] = pts[bi].Threshold
		curves[tier] = pts
	}
	return chosen, curves
}

// Frontier keeps the points of a curve no other point beats on both cost
// and success (and the chosen one), in order of cost: what a policy's
// metrics store and `routelab policy` prints.
func Frontier(curve []FrontierPoint) []FrontierPoint {
	s := append([]FrontierPoint(nil), curve...)
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

// choices scores the requests under a policy: per request its eligible
// candidates (no health: every provider usable). Requests no model can
// serve are left out.
func choices(pol *Policy, reqs []*Request) []Choice {
	c := pol.c
	out := make([]Choice, 0, len(reqs))
	var f Features
	for _, r := range reqs {
		tier := tierIndex(r.Tier)
		Extract(r, r.EditDepth, &f)
		ch := Choice{Tier: []Tier{TierDraft, TierStandard, TierPremium}[tier], W: 1}
		for i := range c.models {
			cost, reason := c.check(i, r, tier, nil)
			if reason != "" {
				continue
			}
			ch.P = append(ch.P, c.score(i, &f))
			ch.Cost = append(ch.Cost, cost)
			ch.Models = append(ch.Models, c.models[i].Name)
		}
		if len(ch.P) > 0 {
			out = append(out, ch)
		}
	}
	return out
}
