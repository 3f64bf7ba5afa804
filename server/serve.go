package server

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// outcome is a served image request.
type outcome struct {
	id            string
	created       time.Time
	model         string
	provider      string
	policy        string
	arms          []events.Arm
	escalated     bool
	fallback      bool
	reset         bool
	attempts      []events.Attempt
	latency       time.Duration
	cost          float64
	images        []providers.Image
	width, height int
	qaPass        bool
	score         float64 // QA score of the returned images
	sampled       bool
	blobKey       string
}

func (o *outcome) experiment() string {
	if len(o.arms) == 0 {
		return ""
	}
	parts := make([]string, len(o.arms))
	for i, a := range o.arms {
		parts[i] = a.Experiment + ":" + a.Arm
	}
	return strings.Join(parts, ",")
}

var errNoModel = &Error{Status: fiber.StatusServiceUnavailable, Code: "no_model_available", Message: "no model can serve this request now", RetryAfter: time.Second}

// serve runs one validated request through routing, providers, QA and
// escalation, samples it for review and emits its events. The decision
// event is emitted on failures too.
func (h *handlers) serve(ctx context.Context, j *job) (*outcome, error) {
	start := h.deps.Now()
	o := &outcome{id: j.id, created: start, width: j.width, height: j.height}
	refs, err := h.refs.load(ctx, j.refs)
	if err != nil {
		return nil, err
	}
	req := router.Request{
		ID: j.id, Tenant: j.tenant, Unit: j.unit, Mode: j.mode, Prompt: j.prompt, RefCount: len(refs),
		Width: j.width, Height: j.height, Tier: j.tier, Constraints: j.constraints, Pin: j.pin,
	}
	var parent *chainNode
	if j.parentID != "" {
		p, ok := h.chains.get(j.parentID)
		if !ok || p.tenant != j.tenant {
			return nil, errField(CodeParentNotFound, "parent_id", "unknown parent_id (edit chains are kept for recent requests on this replica)")
		}
		parent = p
		req.EditDepth = p.depth + 1
		req.RefCount++
	}
	rt := h.deps.Router
	if h.deps.Assigner != nil {
		var ov Overrides
		o.arms, ov = h.deps.Assigner.Assign(req)
		if ov.Router != nil {
			rt = ov.Router
		}
		if ov.Model != "" && req.Pin == "" {
			req.Pin = ov.Model
		}
	}
	route := rt.Decide(req)
	if parent != nil {
		base := parent.image
		if route.Reset {
			// Editing an edit of an edit degrades; restart from the
			// cleanest image of the chain instead of the last output.
			c := h.chains.cleanest(parent)
			base, req.EditDepth, o.reset = c.image, route.EditDepth, true
		}
		refs = append([][]byte{base}, refs...)
	}
	o.policy = route.PolicyVersion
	dec := &events.Decision{
		Header: events.Header{EventID: j.id + ":decision", SchemaVersion: events.SchemaVersion, TS: start.UnixMilli(), Tenant: j.tenant, RequestID: j.id},
		Unit:   j.unit, Mode: string(j.mode), Tier: string(j.tier), Prompt: j.prompt, ParentID: j.parentID,
		PolicyVersion: route.PolicyVersion, Rule: route.Rule, Propensity: route.Propensity, Explored: route.Explored,
		Reset: o.reset, Candidates: route.Candidates, Features: route.Features, Arms: o.arms,
	}
	defer func() {
		dec.LatencyMS = h.deps.Now().Sub(start).Milliseconds()
		h.emit(events.TopicDecisions, j.id, dec)
	}()
	if route.Model == "" {
		dec.Status, dec.ErrorCode = "error", errNoModel.Code
		return nil, errNoModel
	}
	if ok, wait := h.caps.reserve(j.tenant, j.n, start); !ok {
		h.m.limited.WithLabelValues("daily_cap").Inc()
		dec.Status, dec.ErrorCode = "error", CodeDailyCapReached
		return nil, &Error{Status: fiber.StatusTooManyRequests, Code: CodeDailyCapReached, Message: "the tenant's daily image cap is reached", RetryAfter: wait}
	}
	preq := providers.Request{
		RequestID: j.id, Mode: string(j.mode), Prompt: j.prompt, References: refs, Mask: j.mask,
		Width: j.width, Height: j.height, N: j.n, Quality: string(j.tier), OutputFormat: j.format,
		EditDepth: req.EditDepth, Seed: seed(j.id),
	}
	spec := QASpec{Width: j.width, Height: j.height, Format: j.format, PreserveSubject: j.constraints.PreserveSubject}
	if len(refs) > 0 {
		spec.Reference = refs[0]
	}
	res, err := h.attempt(ctx, o, route, preq, spec, j)
	dec.Attempts, dec.Escalated, dec.Fallback, dec.CostUSD = o.attempts, o.escalated, o.fallback, o.cost
	if err != nil {
		h.caps.release(j.tenant, j.n, start)
		e := toError(err)
		dec.Status, dec.ErrorCode = "error", e.Code
		return nil, err
	}
	o.images = res.Images
	o.latency = h.deps.Now().Sub(start)
	dec.Model, dec.Provider, dec.QAPass, dec.Images, dec.Status = o.model, o.provider, o.qaPass, len(res.Images), "ok"
	if len(res.Images) > 0 {
		h.chains.add(&chainNode{id: j.id, tenant: j.tenant, parent: parent, depth: req.EditDepth, image: res.Images[0].Bytes, score: o.score, root: o.reset})
		h.sample(o, j, dec, refs)
	}
	return o, nil
}

// attempt calls models along the route's chain: the next one after a
// provider failure (fallback) or after QA rejects the bytes (escalation,
// while the request's budget allows). With every QA failing it returns
// the best-scoring images.
func (h *handlers) attempt(ctx context.Context, o *outcome, route Route, preq providers.Request, spec QASpec, j *job) (providers.Result, error) {
	chain := make([]string, 0, 1+len(route.Chain))
	chain = append(chain, route.Model)
	for _, m := range route.Chain {
		if m != route.Model {
			chain = append(chain, m)
		}
	}
	var (
		best      providers.Result
		bestModel string
		bestProv  string
		bestScore = -1.0
		lastErr   error
		escalated int
	)
	for i, model := range chain {
		if ctx.Err() != nil {
			lastErr = ctx.Err()
			break
		}
		p, ok := h.deps.Providers[model]
		if !ok {
			o.attempts = append(o.attempts, events.Attempt{Model: model, Status: "error", Error: "no provider configured"})
			continue
		}
		preq.Model = model
		t0 := h.deps.Now()
		res, err := h.call(ctx, model, p, preq)
		att := events.Attempt{Model: model, Provider: p.Name(), LatencyMS: h.deps.Now().Sub(t0).Milliseconds()}
		if err != nil {
			att.Status, att.Error = attemptStatus(err), err.Error()
			h.m.attempts.of([2]string{model, att.Status}).Inc()
			o.attempts = append(o.attempts, att)
			lastErr = err
			if final(err) {
				break
			}
			o.fallback = true
			continue
		}
		att.CostUSD = res.CostUSD
		o.cost += res.CostUSD
		v := h.inspect(res, spec, j, model, len(o.attempts))
		if v.Pass {
			att.Status = "ok"
			h.m.attempts.of([2]string{model, att.Status}).Inc()
			o.attempts = append(o.attempts, att)
			o.model, o.provider, o.qaPass, o.score = model, p.Name(), true, v.Score
			return res, nil
		}
		att.Status = "qa_fail"
		h.m.attempts.of([2]string{model, att.Status}).Inc()
		o.attempts = append(o.attempts, att)
		if v.Score > bestScore {
			best, bestModel, bestProv, bestScore = res, model, p.Name(), v.Score
		}
		if escalated >= h.cfg.MaxEscalations || i+1 >= len(chain) || !h.budgetAllows(o, route, chain[i+1], j) {
			break
		}
		escalated++
		o.escalated = true
		h.m.escalations.Inc()
	}
	if bestScore >= 0 {
		o.model, o.provider, o.qaPass, o.score = bestModel, bestProv, false, bestScore
		return best, nil
	}
	return providers.Result{}, providerError(lastErr)
}

// call takes a slot at the provider's gate and calls it.
func (h *handlers) call(ctx context.Context, model string, p providers.Provider, preq providers.Request) (providers.Result, error) {
	if g := h.gateFor(model); g != nil {
		release, err := g.acquire(ctx)
		if err != nil {
			if errors.Is(err, errShed) {
				h.m.limited.WithLabelValues("shed").Inc()
			}
			return providers.Result{}, err
		}
		defer release()
	}
	return p.Generate(ctx, preq)
}

// inspect runs QA on every returned image and emits one QA event; no QA
// configured counts as a pass.
func (h *handlers) inspect(res providers.Result, spec QASpec, j *job, model string, attempt int) QAVerdict {
	if h.deps.QA == nil {
		return QAVerdict{Pass: len(res.Images) > 0, Score: 1}
	}
	v := QAVerdict{Pass: len(res.Images) > 0, Score: 1}
	if len(res.Images) == 0 {
		v.Score, v.Reason = 0, "no images returned"
	}
	for _, img := range res.Images {
		var iv QAVerdict
		if ii, ok := h.deps.QA.(ImageInspector); ok {
			iv = ii.InspectImage(img, spec)
		} else {
			iv = h.deps.QA.Inspect(img.Bytes, spec)
		}
		v.Checks = append(v.Checks, iv.Checks...)
		if !iv.Pass {
			v.Pass = false
			if v.Reason == "" {
				v.Reason = iv.Reason
			}
		}
		v.Score = min(v.Score, iv.Score)
	}
	h.emit(events.TopicQA, j.id, &events.QAResult{
		Header: events.Header{EventID: j.id + ":qa:" + strconv.Itoa(attempt), SchemaVersion: events.SchemaVersion, TS: h.deps.Now().UnixMilli(), Tenant: j.tenant, RequestID: j.id},
		Model:  model, Attempt: attempt, Pass: v.Pass, Score: v.Score, Checks: v.Checks, Reason: v.Reason,
	})
	return v
}

// budgetAllows says whether escalating to next stays within the request's
// cost and latency limits.
func (h *handlers) budgetAllows(o *outcome, route Route, next string, j *job) bool {
	if c := j.constraints.MaxCostUSD; c > 0 {
		nextCost := 0.0
		for _, cand := range route.Candidates {
			if cand.Model == next {
				nextCost = cand.CostUSD * float64(j.n)
			}
		}
		if o.cost+nextCost > c {
			return false
		}
	}
	if l := j.constraints.MaxLatencyMS; l > 0 && h.deps.Now().Sub(o.created).Milliseconds() >= l {
		return false
	}
	return true
}

func (h *handlers) emit(topic, key string, ev any) {
	if h.deps.Events != nil {
		h.deps.Events.Enqueue(topic, key, ev)
	}
}

func attemptStatus(err error) string {
	var pe *providers.Error
	switch {
	case errors.As(err, &pe):
		switch pe.Kind {
		case providers.KindTimeout:
			return "timeout"
		case providers.KindRateLimited:
			return "rate_limited"
		}
		return "error"
	case errors.Is(err, errShed):
		return "shed"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

// final reports errors that another model would not fix.
func final(err error) bool {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe.Kind == providers.KindContentPolicy || pe.Kind == providers.KindBadRequest
	}
	return errors.Is(err, context.Canceled)
}

// providerError maps the last attempt's failure to what the caller sees.
func providerError(err error) error {
	var pe *providers.Error
	switch {
	case err == nil:
		return errNoModel
	case errors.As(err, &pe) && pe.Kind == providers.KindContentPolicy:
		return &Error{Status: fiber.StatusBadRequest, Code: CodeContentPolicy, Field: "prompt", Message: "the model refused this prompt under its content policy"}
	case errors.As(err, &pe) && pe.Kind == providers.KindBadRequest:
		return &Error{Status: fiber.StatusBadRequest, Code: CodeInvalidRequest, Message: "the model rejected the request: " + pe.Message}
	case errors.Is(err, errShed):
		return err
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &pe) && pe.Kind == providers.KindTimeout):
		return &Error{Status: fiber.StatusGatewayTimeout, Code: CodeTimeout, Message: "no model answered within the request deadline"}
	case errors.Is(err, context.Canceled):
		return &Error{Status: 499, Code: "client_closed", Message: "request cancelled"}
	}
	return &Error{Status: fiber.StatusBadGateway, Code: CodeProviderFailed, Message: "every model in the fallback chain failed", RetryAfter: time.Second}
}

func seed(id string) uint64 {
	f := fnv.New64a()
	_, _ = f.Write([]byte(id))
	return f.Sum64()
}
