package router

import "math"

// RoutePrice is what one image routed by a policy ("auto") costs: the
// range over the models it routes between (every listed size and tier),
// and, for a trained policy, the expected cost per tier at its chosen
// thresholds (Metrics.Frontier, measured on held-out training traffic).
// Escalations after a QA failure are extra attempts and are not included.
type RoutePrice struct {
	MinUSD, MaxUSD float64
	// ExpectedUSD by tier; empty for a rules-only policy, whose mean cost
	// depends on the traffic's mix.
	ExpectedUSD map[Tier]float64
}

// RoutePrice summarises the cost of an image routed by p. Pin-only models
// are left out: routing never picks them.
func (p *Policy) RoutePrice() RoutePrice {
	rp := RoutePrice{MinUSD: math.Inf(1)}
	for _, m := range p.Models {
		if m.PinOnly {
			continue
		}
		for _, byTier := range m.CostUSD {
			for _, c := range byTier {
				rp.MinUSD, rp.MaxUSD = min(rp.MinUSD, c), max(rp.MaxUSD, c)
			}
		}
	}
	if math.IsInf(rp.MinUSD, 1) {
		rp.MinUSD = 0
	}
	if p.Metrics == nil {
		return rp
	}
	for tier, pts := range p.Metrics.Frontier {
		for _, pt := range pts {
			if pt.Chosen {
				if rp.ExpectedUSD == nil {
					rp.ExpectedUSD = map[Tier]float64{}
				}
				rp.ExpectedUSD[tier] = pt.CostUSD
			}
		}
	}
	return rp
}
