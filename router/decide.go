package router

import (
	"github.com/routelab/routelab/events"
)

// Health says which models the server may call right now (the circuit
// breakers' view). A nil Health means everything is usable.
type Health interface {
	Usable(provider, model string) bool
}

// Candidate is one model the router scored for a request; it is the event
// type, so a decision's candidates are logged as they are.
type Candidate = events.Candidate

// Ineligibility reasons, stable strings for events and dashboards.
const (
	ReasonMode       = "mode"       // model cannot serve the mode
	ReasonRefs       = "refs"       // too many references
	ReasonSize       = "size"       // size not offered
	ReasonUnhealthy  = "unhealthy"  // provider circuit open
	ReasonCost       = "cost"       // over max_cost_usd
	ReasonLatency    = "latency"    // p90 latency over max_latency_ms
	ReasonBackground = "background" // cannot make the transparent background asked for
	ReasonImages     = "images"     // cannot make as many images in one request
)

// Decision is the router's answer for one request.
type Decision struct {
	Model    string `json:"model"` // "" when no model can serve the request (see Reason)
	Provider string `json:"provider"`
	Rule     string `json:"rule,omitempty"` // rule (or "pin") that decided
	// Greedy is the model the policy would pick without exploration.
	Greedy string `json:"greedy"`
	// Propensity is the exact probability the policy had of choosing Model.
	Propensity float64     `json:"propensity"`
	Explored   bool        `json:"explored"`
	P          float64     `json:"p"`        // calibrated P(success) of Model (0 without a classifier)
	CostUSD    float64     `json:"cost_usd"` // list price of one image from Model
	Candidates []Candidate `json:"candidates"`
	// Fallbacks are the models to try next, in order, when Model fails at
	// the provider or its output fails QA.
	Fallbacks []string `json:"fallbacks"`
	// Reset: the edit chain is at or past the policy's limit; edit the
	// cleanest prior image instead of the last output. EditDepth is then
	// ResetDepth.
	Reset     bool `json:"reset"`
	EditDepth int  `json:"edit_depth"`
	// Relaxed: no model met the caller's latency/cost limits, so they were
	// ignored.
	Relaxed       bool     `json:"relaxed,omitempty"`
	PolicyVersion string   `json:"policy_version"`
	Reason        string   `json:"reason,omitempty"`
	Features      Features `json:"-"`
}

// Decide routes one request under policy p given provider health h. It is
// deterministic in (request, policy, health): exploration draws come from a
// hash of the request id and the policy version.
func Decide(req Request, p *Policy, h Health) Decision {
	c := p.c
	if c == nil {
		q := *p
		if err := q.Compile(); err != nil {
			return Decision{PolicyVersion: p.Version, Reason: err.Error()}
		}
		c = q.c
	}
	d := Decision{PolicyVersion: p.Version, EditDepth: req.EditDepth}
	if req.Mode == ModeEdit && p.EditDepthLimit > 0 && req.EditDepth >= p.EditDepthLimit {
		d.Reset = true
		d.EditDepth = ResetDepth
	}
	Extract(&req, d.EditDepth, &d.Features)
	f := &d.Features

	n := len(c.models)
	var capable, eligible [MaxModels]bool
	var prob, price [MaxModels]float64
	d.Candidates = make([]Candidate, n)
	tier := tierIndex(req.Tier)
	nCap, nElig := 0, 0
	for i := range c.models {
		m := &c.models[i]
		cand := &d.Candidates[i]
		cand.Model = m.Name
		cost, reason := c.check(i, &req, tier, h)
		cand.CostUSD = cost
		price[i] = cost
		cand.Reason = reason
		if c.weights != nil && !incapable(reason) {
			prob[i] = c.score(i, f)
			cand.P = prob[i]
		}
		switch reason {
		case "":
			eligible[i], capable[i] = true, true
			nElig++
			nCap++
		case ReasonCost, ReasonLatency:
			capable[i] = true
			nCap++
		}
		cand.Eligible = eligible[i]
	}
	if nCap == 0 {
		d.Reason = "no model can serve this request"
		return d
	}
	if nElig == 0 {
		d.Relaxed = true
		eligible = capable
		nElig = nCap
		for i := range d.Candidates {
			d.Candidates[i].Eligible = capable[i]
		}
	}

	// pick is the policy's own choice: the first matching rule, else the
	// classifier's (or the cheapest) model.
	pick, pickRule := -1, ""
	for ri := range c.rules {
		r := &c.rules[ri]
		if eligible[r.model] && r.matches(&req, f) {
			pick, pickRule = r.model, r.name
			break
		}
	}
	if pick < 0 {
		pick = c.greedy(eligible[:n], prob[:n], price[:n], tier)
	}
	greedy := pick
	d.Rule = pickRule
	if req.Pin != "" {
		for i := range c.models {
			if c.models[i].Name == req.Pin && capable[i] {
				greedy = i
				d.Rule = "pin"
			}
		}
	}

	chosen := greedy
	d.Propensity = 1
	if d.Rule != "pin" && p.Epsilon > 0 && nElig > 1 {
		u, v := draws(req.ID, p.Version)
		if u < p.Epsilon {
			d.Explored = true
			k := int(v % uint64(nElig))
			for i := range c.models {
				if !eligible[i] {
					continue
				}
				if k == 0 {
					chosen = i
					break
				}
				k--
			}
		}
		d.Propensity = p.Epsilon / float64(nElig)
		if chosen == greedy {
			d.Propensity += 1 - p.Epsilon
		}
	}
	d.Greedy = c.models[greedy].Name
	d.Model = c.models[chosen].Name
	d.Provider = c.models[chosen].Provider
	d.P = prob[chosen]
	d.CostUSD = d.Candidates[chosen].CostUSD
	d.Fallbacks = c.fallbacks(chosen, &eligible, &prob, &d.Candidates)
	if d.Rule == "pin" && pick != chosen {
		// A pinned model that fails escalates to what the policy would
		// have chosen (a poster pinned to a cheap generalist goes to the
		// typography model), then to the rest in the usual order.
		d.Fallbacks = first(d.Fallbacks, c.models[pick].Name)
	}
	return d
}

// first moves name to the front of list.
func first(list []string, name string) []string {
	for i, m := range list {
		if m == name {
			copy(list[1:i+1], list[:i])
			list[0] = name
			break
		}
	}
	return list
}

// incapable reports whether reason says the model cannot do the request at
// all (its mode, references, size, background or image count), so it is
// not scored; a model left out for health, cost or latency still is.
func incapable(reason string) bool {
	switch reason {
	case ReasonMode, ReasonRefs, ReasonSize, ReasonBackground, ReasonImages:
		return true
	}
	return false
}

// check prices model i for the request and says why it is not eligible
// ("" when it is).
func (c *compiled) check(i int, req *Request, tier int, h Health) (float64, string) {
	m := &c.models[i]
	if !m.Supports(req.Mode) {
		return 0, ReasonMode
	}
	if req.RefCount > m.MaxRefs {
		return 0, ReasonRefs
	}
	if req.Transparent && !m.TransparentBackground {
		return 0, ReasonBackground
	}
	if m.MaxImages > 0 && req.N > m.MaxImages {
		return 0, ReasonImages
	}
	w, ht := req.Width, req.Height
	if w <= 0 || ht <= 0 {
		w, ht = 1024, 1024
	}
	cost := -1.0
	for _, s := range c.sizes[i] {
		if s.w == w && s.h == ht {
			cost = s.cost[tier]
			break
		}
	}
	if cost < 0 {
		return 0, ReasonSize
	}
	if h != nil && !h.Usable(m.Provider, m.Name) {
		return cost, ReasonUnhealthy
	}
	if req.Constraints.MaxCostUSD > 0 && cost > req.Constraints.MaxCostUSD {
		return cost, ReasonCost
	}
	if req.Constraints.MaxLatencyMS > 0 && c.p90[i] > float64(req.Constraints.MaxLatencyMS) {
		return cost, ReasonLatency
	}
	return cost, ""
}

// score is the calibrated P(success | features, model i).
func (c *compiled) score(i int, f *Features) float64 {
	w := c.weights[i]
	z := 0.0
	for _, j := range f.Idx[:f.N] {
		z += w[j]
	}
	return c.cal[i].Apply(z)
}

// greedy picks without exploration: with a classifier, Pick at the tier's
// threshold; without one, the default model, else the cheapest.
func (c *compiled) greedy(eligible []bool, prob, price []float64, tier int) int {
	if c.weights != nil {
		return Pick(prob, price, eligible, c.thresholds[tier])
	}
	if c.def >= 0 && eligible[c.def] {
		return c.def
	}
	best := -1
	for i := range price {
		if eligible[i] && (best < 0 || price[i] < price[best]) {
			best = i
		}
	}
	return best
}

// Pick is the classifier's choice among candidate models, the rule Decide
// runs and the one the threshold search and the rule audit replay: the
// cheapest eligible model whose calibrated P clears threshold (between
// equally cheap ones the more likely, then the first); when none clears
// it, the most likely eligible model (the first of equals). p, cost and
// eligible are indexed alike; a nil eligible means every model is. It
// returns -1 when no model is eligible.
func Pick(p, cost []float64, eligible []bool, threshold float64) int {
	cheap, top := -1, -1
	for i := range p {
		if eligible != nil && !eligible[i] {
			continue
		}
		if top < 0 || p[i] > p[top] {
			top = i
		}
		if p[i] >= threshold && (cheap < 0 || cost[i] < cost[cheap] || cost[i] == cost[cheap] && p[i] > p[cheap]) {
			cheap = i
		}
	}
	if cheap >= 0 {
		return cheap
	}
	return top
}

// fallbacks orders the other eligible models by P (then price) without a
// classifier by price.
func (c *compiled) fallbacks(chosen int, eligible *[MaxModels]bool, prob *[MaxModels]float64, cands *[]Candidate) []string {
	cs := *cands
	var order [MaxModels]int
	k := 0
	for i := range cs {
		if i == chosen || !eligible[i] {
			continue
		}
		j := k
		for j > 0 && better(i, order[j-1], prob, cs) {
			order[j] = order[j-1]
			j--
		}
		order[j] = i
		k++
	}
	if k == 0 {
		return nil
	}
	out := make([]string, k)
	for j := 0; j < k; j++ {
		out[j] = cs[order[j]].Model
	}
	return out
}

func better(a, b int, prob *[MaxModels]float64, cs []Candidate) bool {
	if prob[a] != prob[b] {
		return prob[a] > prob[b]
	}
	return cs[a].CostUSD < cs[b].CostUSD
}

// draws returns a uniform number in [0,1) and a second independent 64-bit
// draw, both a pure function of the request id and the policy version.
func draws(id, version string) (float64, uint64) {
	h := uint64(fnvOffset)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= fnvPrime
	}
	h ^= 0xff
	h *= fnvPrime
	for i := 0; i < len(version); i++ {
		h ^= uint64(version[i])
		h *= fnvPrime
	}
	a := splitmix(h)
	b := splitmix(a)
	return float64(a>>11) / (1 << 53), b
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// EventFeatures converts features for the decision event (allocates).
func (f *Features) Event(req *Request) events.Features {
	ef := events.Features{
		PromptLen: f.PromptLen, RefCount: f.RefCount, EditDepth: f.EditDepth, Aspect: f.Aspect,
		TextHeavy: req.Constraints.TextHeavy, Preserve: req.Constraints.PreserveSubject,
		Keywords: f.KeywordList(), MaxLatency: req.Constraints.MaxLatencyMS, MaxCostUSD: req.Constraints.MaxCostUSD,
	}
	for _, j := range f.Idx[:f.N] {
		if int(j) >= numBase {
			ef.HashedGrams = append(ef.HashedGrams, uint32(int(j)-numBase))
		}
	}
	return ef
}
