package router

import (
	"math"
	"sort"
)

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
