package jobs

import (
	"fmt"
	"math"

	"github.com/routelab/routelab/experiments/ope"
	"github.com/routelab/routelab/router"
)

// OPEOptions configure jobs ope.
type OPEOptions struct {
	ope.Options
	// Margin: the gate passes when the candidate's DR estimate is at least
	// the live policy's logged success rate minus Margin. Default 0.01.
	Margin float64 `json:"margin"`
}

// OPEReport is the outcome of jobs ope: the candidate's estimated success
// rate on the live policy's logged traffic.
type OPEReport struct {
	Job       string       `json:"job"`
	Candidate string       `json:"candidate_version"`
	Live      string       `json:"live_version"`
	Window    Window       `json:"window"`
	N         int          `json:"n"`
	Skipped   int          `json:"skipped"` // logged rows the candidate cannot route at all
	IPS       ope.Estimate `json:"ips"`
	SNIPS     ope.Estimate `json:"snips"`
	DR        ope.Estimate `json:"dr"`
	ESS       float64      `json:"ess"`
	Support   float64      `json:"support"`
	Matched   int          `json:"matched"`
	LiveValue float64      `json:"live_value"` // the live policy's observed success on the same rows
	Delta     float64      `json:"delta"`      // DR - live
	Margin    float64      `json:"margin"`
	Pass      bool         `json:"pass"`
	Refused   bool         `json:"refused"`
	Reason    string       `json:"reason,omitempty"`
	Code      string       `json:"code,omitempty"`
	ElapsedMS int64        `json:"elapsed_ms"`
}

// Replay turns a logged decision back into the request the router saw.
// The decision log keeps the aspect ratio, not the size, so the size is the
// standard one for the ratio whose prices under the logging policy match
// the logged candidates' prices (a square request is 1024x1024 or
// 2048x2048); with no logged prices, the smallest.
func (l Logged) Replay(logging *router.Policy) router.Request {
	req := router.Request{
		ID: l.RequestID, Tenant: l.Tenant, Mode: router.Mode(l.Mode), Prompt: l.Prompt, RefCount: l.RefCount,
		Tier: router.Tier(l.Tier), EditDepth: l.EditDepth,
		Constraints: router.Constraints{TextHeavy: l.TextHeavy, PreserveSubject: l.Preserve, MaxLatencyMS: l.MaxLatency, MaxCostUSD: l.MaxCost},
	}
	sizes := [][2]int{{1024, 1024}, {2048, 2048}}
	switch {
	case l.Aspect > 1.15:
		sizes = [][2]int{{1536, 1024}}
	case l.Aspect > 0 && l.Aspect < 0.87:
		sizes = [][2]int{{1024, 1536}}
	}
	req.Width, req.Height = sizes[0][0], sizes[0][1]
	if len(sizes) == 1 || logging == nil || len(l.CandModels) == 0 {
		return req
	}
	for _, sz := range sizes {
		r := req
		r.Width, r.Height = sz[0], sz[1]
		if pricesMatch(router.Decide(r, logging, nil).Candidates, l.CandModels, l.CandCosts) {
			return r
		}
	}
	return req
}

func pricesMatch(cands []router.Candidate, models []string, costs []float64) bool {
	for i, m := range models {
		if i >= len(costs) || costs[i] <= 0 {
			continue
		}
		for _, c := range cands {
			if c.Model == m && math.Abs(c.CostUSD-costs[i]) > 1e-9 {
				return false
			}
		}
	}
	return true
}

// Distribution is the probability a policy gives each model for a request
// under Decide: 1 - epsilon on the greedy model plus epsilon spread
// uniformly over the eligible models (pins and rules-only requests with one
// eligible model are deterministic).
func Distribution(d router.Decision, p *router.Policy) []ope.ActionProb {
	if d.Model == "" {
		return nil
	}
	var elig []string
	for _, c := range d.Candidates {
		if c.Eligible {
			elig = append(elig, c.Model)
		}
	}
	if d.Rule == "pin" || p.Epsilon == 0 || len(elig) <= 1 {
		return []ope.ActionProb{{Action: d.Greedy, P: 1}}
	}
	out := make([]ope.ActionProb, 0, len(elig))
	for _, m := range elig {
		pr := p.Epsilon / float64(len(elig))
		if m == d.Greedy {
			pr += 1 - p.Epsilon
		}
		out = append(out, ope.ActionProb{Action: m, P: pr})
	}
	return out
}

// OPESample is the context the DR reward model reads: the candidate's
// calibrated P for every model on the request.
type OPESample struct {
	P map[string]float64
}

// LoggedRequest is a logged decision ready for replay: the request the
// router saw, the model the logging policy called, its propensity and the
// label.
type LoggedRequest struct {
	Req        router.Request
	Model      string
	Propensity float64
	Y          float64
}

// BuildSamples replays every logged decision under the candidate (target
// distribution, reward model) and the live policy (logging distribution,
// for the support check). Rows the candidate cannot route are skipped and
// counted.
func BuildSamples(logged []LoggedRequest, cand, live *router.Policy) (samples []ope.Sample[OPESample], skipped int) {
	samples = make([]ope.Sample[OPESample], 0, len(logged))
	for _, l := range logged {
		req := l.Req
		dc := router.Decide(req, cand, nil)
		target := Distribution(dc, cand)
		if target == nil {
			skipped++
			continue
		}
		ctx := OPESample{P: make(map[string]float64, len(dc.Candidates))}
		for _, c := range dc.Candidates {
			ctx.P[c.Model] = c.P
		}
		s := ope.Sample[OPESample]{Context: ctx, Action: l.Model, Propensity: l.Propensity, Reward: l.Y, Target: target}
		if live != nil {
			s.Logging = Distribution(router.Decide(req, live, nil), live)
		}
		samples = append(samples, s)
	}
	return samples, skipped
}

// CandidateModel is the DR reward model: the candidate's own calibrated P.
func CandidateModel(x OPESample, action string) float64 { return x.P[action] }

// EvaluateCandidate runs OPE of cand on logged decisions (from a source)
// of live; see EvaluateLogged.
func EvaluateCandidate(logged []Logged, cand, live *router.Policy, w Window, opt OPEOptions) OPEReport {
	lr := make([]LoggedRequest, len(logged))
	for i, l := range logged {
		lr[i] = LoggedRequest{Req: l.Replay(live), Model: l.Model, Propensity: l.Propensity, Y: l.Y}
	}
	return EvaluateLogged(lr, cand, live, w, opt)
}

// EvaluateLogged runs OPE of cand on logged decisions of live and fills
// the gate decision. A refusal is a report (Refused, Reason, Code) and a
// failed gate, not an error.
func EvaluateLogged(logged []LoggedRequest, cand, live *router.Policy, w Window, opt OPEOptions) OPEReport {
	if opt.Margin <= 0 {
		opt.Margin = 0.01
	}
	rep := OPEReport{Job: "ope", Candidate: cand.Version, Live: live.Version, Window: w, Margin: opt.Margin}
	samples, skipped := BuildSamples(logged, cand, live)
	rep.Skipped = skipped
	rep.N = len(samples)
	var y float64
	for _, s := range samples {
		y += s.Reward
	}
	if len(samples) > 0 {
		rep.LiveValue = y / float64(len(samples))
	}
	r, err := ope.Evaluate(samples, CandidateModel, opt.Options)
	rep.ESS, rep.Support, rep.Matched = r.ESS, r.Support, r.Matched
	if err != nil {
		rep.Refused = true
		rep.Reason = err.Error()
		if re, ok := err.(*ope.RefusalError); ok {
			rep.Code = re.Code
			rep.Reason = re.Reason
		}
		// estimates stay zero: a refused report carries no numbers
		return rep
	}
	rep.IPS, rep.SNIPS, rep.DR = r.IPS, r.SNIPS, r.DR
	rep.Delta = r.DR.Value - rep.LiveValue
	rep.Pass = r.DR.Value >= rep.LiveValue-opt.Margin
	if !rep.Pass {
		rep.Reason = fmt.Sprintf("candidate DR %.4f is below live %.4f by more than %.3f", r.DR.Value, rep.LiveValue, opt.Margin)
	}
	return rep
}
