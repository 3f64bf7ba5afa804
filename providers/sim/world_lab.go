package sim

import (
	"math"
	"sort"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// Served is how serving one routed request went in the simulated world:
// the lab's stand-in for serve's provider loop (fallback on provider
// errors, the caller's latency budget as the deadline; no QA escalation).
type Served struct {
	Attempts  []events.Attempt
	Model     string // model whose image was returned; "" when none
	Success   bool
	Quality   float64
	CostUSD   float64
	LatencyMS int64
	Fallback  bool
	// FirstLabel says whether the first attempt tells anything about the
	// routed model's quality (it returned an image or ran out of time);
	// FirstSuccess is then its outcome.
	FirstLabel   bool
	FirstSuccess bool
}

// MaxAttempts bounds the provider calls per request in the lab.
const MaxAttempts = 3

// Serve runs decision d for req (whose hidden task is task) through the
// world: the routed model first, then the fallbacks on provider errors.
func (w *World) Serve(req *router.Request, task string, d *router.Decision) Served {
	var s Served
	if d.Model == "" {
		return s
	}
	chain := make([]string, 0, 1+len(d.Fallbacks))
	chain = append(chain, d.Model)
	chain = append(chain, d.Fallbacks...)
	var elapsed float64
	for a := 0; a < MaxAttempts && a < len(chain); a++ {
		c := Call{
			RequestID: req.ID, Model: chain[a], Task: task, Mode: string(req.Mode), Prompt: req.Prompt,
			RefCount: req.RefCount, EditDepth: d.EditDepth, Attempt: a, Width: req.Width, Height: req.Height, Tier: string(req.Tier),
		}
		if req.Constraints.MaxLatencyMS > 0 {
			left := float64(req.Constraints.MaxLatencyMS) - elapsed
			if left <= 0 {
				break
			}
			c.DeadlineMS = int64(math.Max(left, 1))
		}
		o := w.Call(c)
		latMS := float64(o.Latency.Microseconds()) / 1000
		elapsed += latMS
		s.CostUSD += o.CostUSD
		at := events.Attempt{Model: c.Model, Provider: w.provider(c.Model), LatencyMS: int64(latMS), CostUSD: o.CostUSD}
		switch o.ErrKind {
		case "":
			at.Status = "ok"
		case providers.KindTimeout:
			at.Status, at.Error = "timeout", string(o.ErrKind)
		case providers.KindRateLimited:
			at.Status, at.Error = "rate_limited", string(o.ErrKind)
		default:
			at.Status, at.Error = "error", string(o.ErrKind)
		}
		s.Attempts = append(s.Attempts, at)
		if a == 0 {
			s.FirstLabel = o.ErrKind == "" || o.ErrKind == providers.KindTimeout
			s.FirstSuccess = o.Success
		}
		if o.ErrKind == "" {
			s.Model, s.Success, s.Quality = c.Model, o.Success, o.Quality
			s.Fallback = a > 0
			break
		}
	}
	s.LatencyMS = int64(elapsed)
	return s
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
	Fallbacks       int                `json:"fallbacks"`
	RouteShare      map[string]float64 `json:"route_share"`
}

// Calib pairs a routed model's predicted P with its first attempt's outcome.
type Calib struct {
	P       []float64
	Success []bool
}

// Run routes every job with choose, serves it and sums up. oracleP holds
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
		s := w.Serve(&j.Req, j.Task, &d)
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
		if s.Fallback {
			r.Fallbacks++
		}
		cost += s.CostUSD
		lat = append(lat, float64(s.LatencyMS))
		r.RouteShare[d.Model]++
		if calib != nil && s.FirstLabel {
			calib.P = append(calib.P, d.P)
			calib.Success = append(calib.Success, s.FirstSuccess)
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

// Event is the decision event serve would emit for this request: what the
// router decided and how serving went. ts is unix ms.
func (s *Served) Event(req *router.Request, d *router.Decision, ts int64) events.Decision {
	e := events.Decision{
		Header: events.Header{EventID: req.ID, SchemaVersion: events.SchemaVersion, TS: ts, Tenant: req.Tenant, RequestID: req.ID},
		Unit:   req.Unit, Mode: string(req.Mode), Tier: string(req.Tier), Prompt: req.Prompt, ParentID: req.Parent,
		Model: s.Model, Provider: d.Provider, PolicyVersion: d.PolicyVersion, Rule: d.Rule,
		Propensity: d.Propensity, Explored: d.Explored, Reset: d.Reset, Candidates: d.Candidates,
		Features: d.Features.Event(req), Attempts: s.Attempts, Fallback: s.Fallback,
		QAPass: s.Success, LatencyMS: s.LatencyMS, CostUSD: s.CostUSD,
	}
	if e.Tier == "" {
		e.Tier = string(router.TierStandard)
	}
	if s.Model != "" {
		e.Status, e.Images = "ok", 1
		e.Provider = w0(s.Attempts)
	} else {
		e.Status, e.ErrorCode = "error", "upstream_failed"
		if d.Model == "" {
			e.ErrorCode = "no_eligible_model"
		}
	}
	return e
}

func w0(at []events.Attempt) string {
	return at[len(at)-1].Provider
}
