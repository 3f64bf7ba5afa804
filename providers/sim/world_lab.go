package sim

import (
	"sort"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// Judged is the truth's verdict on a routing decision: one call of the
// routed model, the caller's latency budget as its deadline. It is not
// serving (no fallback, no QA, no escalation: those are gateway.Serve's,
// and the lab measures them through it); it isolates what routing chose,
// for policy evaluation and for test fixtures.
type Judged struct {
	Attempt   events.Attempt
	Success   bool
	Quality   float64
	CostUSD   float64
	LatencyMS int64
	// Label says whether the call tells anything about the routed model's
	// quality (it returned an image, or ran out of time).
	Label bool
}

// Judge calls decision d's model once for req, whose hidden task is task.
func (w *World) Judge(req *router.Request, task string, d *router.Decision) Judged {
	var j Judged
	if d.Model == "" {
		return j
	}
	c := Call{
		RequestID: req.ID, Model: d.Model, Task: task, Mode: string(req.Mode), Prompt: req.Prompt,
		RefCount: req.RefCount, EditDepth: d.EditDepth, Width: req.Width, Height: req.Height, Tier: string(req.Tier),
		DeadlineMS: req.Constraints.MaxLatencyMS,
	}
	o := w.Call(c)
	j.LatencyMS = o.Latency.Milliseconds()
	j.CostUSD, j.Success, j.Quality = o.CostUSD, o.Success, o.Quality
	j.Label = o.ErrKind == "" || o.ErrKind == providers.KindTimeout
	j.Attempt = events.Attempt{Model: c.Model, Provider: w.provider(c.Model), LatencyMS: j.LatencyMS, CostUSD: o.CostUSD, Status: "ok"}
	if o.ErrKind != "" {
		j.Attempt.Status, j.Attempt.Error = attemptStatus(o.ErrKind), string(o.ErrKind)
	}
	return j
}

func attemptStatus(k providers.ErrorKind) string {
	switch k {
	case providers.KindTimeout:
		return "timeout"
	case providers.KindRateLimited:
		return "rate_limited"
	}
	return "error"
}

func (w *World) provider(model string) string {
	if t, ok := w.models[model]; ok {
		return t.m.Provider
	}
	return ""
}

// Job is one workload request with its hidden task.
type Job struct {
	Req  router.Request
	Task string
}

// Chooser routes one job; baselines and the oracle are choosers too.
type Chooser func(j *Job) router.Decision

// PolicyChooser routes with router.Decide under p, all providers healthy.
func PolicyChooser(p *router.Policy) Chooser {
	return func(j *Job) router.Decision { return router.Decide(j.Req, p, nil) }
}

// PinChooser sends every request to model (a pin) when it can serve it,
// otherwise routes under p: the always:<model> baseline.
func PinChooser(p *router.Policy, model string) Chooser {
	return func(j *Job) router.Decision {
		r := j.Req
		r.Pin = model
		return router.Decide(r, p, nil)
	}
}

// OracleChooser knows the hidden truth: among the models eligible under p
// (capabilities, sizes, the caller's budgets) it picks the one most likely
// to return a good image within the latency budget (SuccessP), resetting an
// edit chain when that helps; ties go to the cheaper model.
func (w *World) OracleChooser(p *router.Policy) Chooser {
	return func(j *Job) router.Decision {
		d := router.Decide(j.Req, p, nil)
		if d.Model == "" {
			return d
		}
		depth := j.Req.EditDepth
		best, bestP, bestCost, bestReset := "", -1.0, 0.0, false
		type cand struct {
			name string
			p    float64
		}
		var all []cand
		for _, c := range d.Candidates {
			if !c.Eligible {
				continue
			}
			budget := j.Req.Constraints.MaxLatencyMS
			p, reset := w.SuccessP(c.Model, j.Task, depth, budget), false
			if j.Req.Mode == router.ModeEdit && depth > router.ResetDepth {
				if pr := w.SuccessP(c.Model, j.Task, router.ResetDepth, budget); pr > p {
					p, reset = pr, true
				}
			}
			all = append(all, cand{c.Model, p})
			if p > bestP || p == bestP && c.CostUSD < bestCost {
				best, bestP, bestCost, bestReset = c.Model, p, c.CostUSD, reset
			}
		}
		sort.SliceStable(all, func(a, b int) bool { return all[a].p > all[b].p })
		o := router.Decision{Model: best, Provider: w.provider(best), Greedy: best, Propensity: 1, P: bestP, CostUSD: bestCost,
			Candidates: d.Candidates, Reset: bestReset, EditDepth: depth, PolicyVersion: "oracle"}
		if bestReset {
			o.EditDepth = router.ResetDepth
		}
		for _, c := range all {
			if c.name != best {
				o.Fallbacks = append(o.Fallbacks, c.name)
			}
		}
		return o
	}
}

// PolicyResult is one router's figures on a workload.
type PolicyResult struct {
	Name         string  `json:"name"`
	SuccessRate  float64 `json:"success_rate"`
	MeanCostUSD  float64 `json:"mean_cost_usd"`
	P50LatencyMS float64 `json:"p50_latency_ms"`
	P95LatencyMS float64 `json:"p95_latency_ms"`
	// Regret is the oracle's expected success minus this router's, per
	// request, from the true probabilities (SuccessP: quality and the
	// latency budget; no sampling noise).
	Regret          float64 `json:"regret"`
	ExpectedSuccess float64 `json:"expected_success"`
	// SuccessNoBudget is the success rate on requests without a latency
	// budget, where slow models are not cut off by deadlines.
	SuccessNoBudget float64            `json:"success_rate_no_latency_budget"`
	Requests        int                `json:"requests"`
	Unserved        int                `json:"unserved"`
	Resets          int                `json:"resets"`
	RouteShare      map[string]float64 `json:"route_share"`
}

// Calib pairs a routed model's predicted P with its first attempt's outcome.
type Calib struct {
	P       []float64
	Success []bool
}

// Run routes every job with choose, judges the routed model's call
// (Judge) and sums up. oracleP holds
// the oracle's true success probability per job (nil: regret not computed).
// When calib is not nil it receives the (P, outcome) pairs.
func (w *World) Run(name string, jobs []Job, choose Chooser, oracleP []float64, calib *Calib) (PolicyResult, []float64) {
	r := PolicyResult{Name: name, Requests: len(jobs), RouteShare: map[string]float64{}}
	lat := make([]float64, 0, len(jobs))
	trueP := make([]float64, len(jobs))
	var succ, cost, exp, succNB, nNB float64
	for i := range jobs {
		j := &jobs[i]
		d := choose(j)
		if d.Model == "" {
			r.Unserved++
			continue
		}
		s := w.Judge(&j.Req, j.Task, &d)
		trueP[i] = w.SuccessP(d.Model, j.Task, d.EditDepth, j.Req.Constraints.MaxLatencyMS)
		exp += trueP[i]
		if s.Success {
			succ++
		}
		if j.Req.Constraints.MaxLatencyMS == 0 {
			nNB++
			if s.Success {
				succNB++
			}
		}
		if d.Reset {
			r.Resets++
		}
		cost += s.CostUSD
		lat = append(lat, float64(s.LatencyMS))
		r.RouteShare[d.Model]++
		if calib != nil && s.Label {
			calib.P = append(calib.P, d.P)
			calib.Success = append(calib.Success, s.Success)
		}
	}
	n := float64(len(jobs))
	if n == 0 {
		return r, trueP
	}
	r.SuccessRate, r.MeanCostUSD, r.ExpectedSuccess = succ/n, cost/n, exp/n
	if nNB > 0 {
		r.SuccessNoBudget = succNB / nNB
	}
	for m := range r.RouteShare {
		r.RouteShare[m] /= n
	}
	sort.Float64s(lat)
	r.P50LatencyMS, r.P95LatencyMS = quantile(lat, 0.5), quantile(lat, 0.95)
	if oracleP != nil {
		var o float64
		for i := range oracleP {
			o += oracleP[i] - trueP[i]
		}
		r.Regret = o / n
	}
	return r, trueP
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i]*(1-f) + sorted[i+1]*f
}

// Event is a logged decision event for a judged request (test fixtures):
// the decision and the one call. ts is unix ms.
func (j *Judged) Event(req *router.Request, d *router.Decision, ts int64) events.Decision {
	e := events.Decision{
		Header: events.Header{EventID: req.ID, SchemaVersion: events.SchemaVersion, TS: ts, Tenant: req.Tenant, RequestID: req.ID},
		Unit:   req.Unit, Mode: string(req.Mode), Tier: string(req.Tier), Prompt: req.Prompt, ParentID: req.Parent,
		PolicyVersion: d.PolicyVersion, Rule: d.Rule, Propensity: d.Propensity, Explored: d.Explored, Reset: d.Reset,
		Candidates: d.Candidates, Features: d.Features.Event(req), QAPass: j.Success, LatencyMS: j.LatencyMS, CostUSD: j.CostUSD,
	}
	if e.Tier == "" {
		e.Tier = string(router.TierStandard)
	}
	if d.Model == "" {
		e.Status, e.ErrorCode = "error", "no_model_available"
		return e
	}
	e.Attempts = []events.Attempt{j.Attempt}
	if j.Attempt.Status == "ok" {
		e.Status, e.Images, e.Model, e.Provider = "ok", 1, d.Model, j.Attempt.Provider
	} else {
		e.Status, e.ErrorCode = "error", "provider_failed"
	}
	return e
}
