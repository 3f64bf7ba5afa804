package gateway

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// Serve runs one validated request through experiment assignment, routing,
// the daily cap and spend budget, providers, QA and escalation, samples it for review and
// emits its events. The decision event is emitted on failures too. Errors
// are *Error; ctx bounds every provider call.
func (g *Gateway) Serve(ctx context.Context, r Request) (*Outcome, error) {
	if err := g.refuseBacklogged(); err != nil {
		return nil, err
	}
	start := g.deps.Now()
	o := &Outcome{ID: r.ID, Created: start}
	if r.Refs == nil {
		r.Refs = Loaded(nil)
	}
	req := router.Request{
		ID: r.ID, Tenant: r.Tenant, Unit: r.Unit, Mode: r.Mode, Prompt: r.Prompt, RefCount: r.Refs.Count(),
		Width: r.Width, Height: r.Height, Tier: r.Tier, Constraints: r.Constraints, Pin: r.Pin, Parent: r.ParentID,
		Transparent: r.Background == "transparent", N: r.N,
	}
	var parent *chainNode
	if r.ParentID != "" {
		p, ok := g.chainNode(ctx, r.ParentID)
		if !ok || p.tenant != r.Tenant {
			return nil, &Error{Code: CodeParentNotFound, Field: "parent_id", Message: "unknown parent_id (edit chains are kept for recent requests only)"}
		}
		parent = p
		req.EditDepth = p.depth + 1
		req.RefCount++
	}
	policy := g.deps.Policy
	var ov Overrides
	if g.deps.Assigner != nil {
		o.Arms, ov = g.deps.Assigner.Assign(req)
		if ov.Policy != nil {
			policy = ov.Policy
		}
		if ov.Model != "" && req.Pin == "" {
			req.Pin = ov.Model
		}
	}
	d := policy.Decide(req)
	o.Decision = d
	g.feedback.served.Add(r.ID, r.Tenant)
	var base []byte
	if parent != nil {
		base = parent.image
		if d.Reset {
			// Editing an edit of an edit degrades; restart from the
			// cleanest image of the chain instead of the last output.
			c := g.cleanest(ctx, parent)
			base, req.EditDepth, o.Reset = c.image, d.EditDepth, true
		}
	}
	dec := &events.Decision{
		Header: events.Header{EventID: r.ID + ":decision", SchemaVersion: events.SchemaVersion, TS: start.UnixMilli(), Tenant: r.Tenant, RequestID: r.ID},
		Unit:   r.Unit, Mode: string(r.Mode), Tier: string(r.Tier), Prompt: r.Prompt, ParentID: r.ParentID,
		PolicyVersion: d.PolicyVersion, Rule: d.Rule, Propensity: d.Propensity, Explored: d.Explored,
		Reset: o.Reset, Candidates: d.Candidates, Features: d.Features.Event(&req), Arms: o.Arms,
	}
	defer func() {
		dec.LatencyMS = g.deps.Now().Sub(start).Milliseconds()
		g.emit(events.TopicDecisions, r.ID, dec)
	}()
	if d.Model == "" {
		dec.Status, dec.ErrorCode = "error", errNoModel.Code
		return nil, errNoModel
	}
	booked, cerr := g.reserve(ctx, &r, start, d.CostUSD)
	if cerr != nil {
		dec.Status, dec.ErrorCode = "error", cerr.Code
		return nil, cerr
	}
	refs, err := r.Refs.Load(ctx)
	if err != nil {
		booked.done(ctx, false, 0)
		dec.Status, dec.ErrorCode = "error", CodeReferenceFailed
		return nil, err
	}
	if base != nil {
		refs = append([][]byte{base}, refs...)
	}
	preq := g.providerRequest(&r, req.EditDepth, refs)
	spec := QASpec{Width: r.Width, Height: r.Height, Format: r.Format, PreserveSubject: r.Constraints.PreserveSubject,
		Text: router.TargetTexts(r.Prompt), Tier: string(r.Tier)}
	if len(refs) > 0 {
		spec.Reference = refs[0]
	}
	res, aerr := g.attempt(ctx, o, &d, preq, spec, &r)
	dec.Attempts, dec.Escalated, dec.Fallback, dec.CostUSD = o.Attempts, o.Escalated, o.Fallback, o.CostUSD
	// What the attempts cost is spent whether or not they delivered.
	booked.done(ctx, aerr == nil, o.CostUSD)
	if aerr != nil {
		dec.Status, dec.ErrorCode = "error", aerr.Code
		return nil, aerr
	}
	o.Images = res.Images
	o.Latency = g.deps.Now().Sub(start)
	dec.Model, dec.Provider, dec.QAPass, dec.Images, dec.Status = o.Model, o.Provider, o.QAPass, len(res.Images), "ok"
	if len(res.Images) > 0 {
		g.keepChain(ctx, &chainNode{id: r.ID, tenant: r.Tenant, parent: parent, parentID: r.ParentID, depth: req.EditDepth, image: res.Images[0].Bytes, score: o.Score, model: o.Model, root: o.Reset})
		g.sample(ctx, o, &r, dec, refs)
	}
	g.mirror(&r, req, refs, spec, ov.Shadow, dec)
	return o, nil
}

// providerRequest is what the provider is asked for r.
func (g *Gateway) providerRequest(r *Request, editDepth int, refs [][]byte) providers.Request {
	return providers.Request{
		RequestID: r.ID, Mode: string(r.Mode), Prompt: r.Prompt, References: refs, Mask: r.Mask,
		Width: r.Width, Height: r.Height, N: r.N, Quality: string(r.Tier), OutputFormat: r.Format, OutputCompression: r.Compression,
		EditDepth: editDepth, Seed: fnv1a(r.ID),
		Background: r.Background, Moderation: r.Moderation, InputFidelity: r.InputFidelity, Style: r.Style, User: r.User,
	}
}

// Experiment names an outcome's arms as "experiment:arm,...".
func (o *Outcome) Experiment() string {
	if len(o.Arms) == 0 {
		return ""
	}
	parts := make([]string, len(o.Arms))
	for i, a := range o.Arms {
		parts[i] = a.Experiment + ":" + a.Arm
	}
	return strings.Join(parts, ",")
}

// attempt calls models along the decision's chain: the next one after a
// provider failure (fallback) or after QA rejects the bytes (escalation,
// while the request's budget allows). With every QA failing it returns
// the best-scoring images.
func (g *Gateway) attempt(ctx context.Context, o *Outcome, d *router.Decision, preq providers.Request, spec QASpec, r *Request) (providers.Result, *Error) {
	chain := make([]string, 0, 1+len(d.Fallbacks))
	chain = append(chain, d.Model)
	for _, m := range d.Fallbacks {
		if m != d.Model {
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
		p, ok := g.deps.Providers[model]
		if !ok {
			o.Attempts = append(o.Attempts, events.Attempt{Model: model, Status: "error", Error: "no_provider"})
			continue
		}
		preq.Model = model
		t0 := g.deps.Now()
		res, err := g.call(ctx, model, p, preq)
		att := events.Attempt{Model: model, Provider: p.Name(), LatencyMS: g.deps.Now().Sub(t0).Milliseconds()}
		if err != nil {
			// The vendor's text can hold a key prefix or an internal host:
			// callers and events get the kind, the log gets the detail.
			att.Status, att.Error = attemptStatus(err), errorKind(err)
			g.log.Warn("provider call failed", "request_id", r.ID, "model", model, "err", err)
			g.m.attempts.Of([2]string{model, att.Status}).Inc()
			o.Attempts = append(o.Attempts, att)
			lastErr = err
			if final(err) && !g.refusalMovesOn(err, r.Tenant) {
				break
			}
			o.Fallback = true
			continue
		}
		att.CostUSD, att.CostSource = res.CostUSD, cmp.Or(res.CostSource, providers.CostCatalog)
		o.CostUSD += res.CostUSD
		v := g.inspect(ctx, res, g.specFor(model, spec), r, model, len(o.Attempts))
		if v.Pass {
			att.Status = "ok"
			g.m.attempts.Of([2]string{model, att.Status}).Inc()
			o.Attempts = append(o.Attempts, att)
			o.Model, o.Provider, o.QAPass, o.Score, o.Usage = model, p.Name(), true, v.Score, res.Usage
			return res, nil
		}
		att.Status = "qa_fail"
		g.m.attempts.Of([2]string{model, att.Status}).Inc()
		o.Attempts = append(o.Attempts, att)
		if v.Score > bestScore {
			best, bestModel, bestProv, bestScore = res, model, p.Name(), v.Score
		}
		if escalated >= g.cfg.MaxEscalations || i+1 >= len(chain) || !g.budgetAllows(o, d, chain[i+1], r) {
			break
		}
		escalated++
		o.Escalated = true
		g.m.escalations.Inc()
	}
	if bestScore >= 0 {
		o.Model, o.Provider, o.QAPass, o.Score = bestModel, bestProv, false, bestScore
		return best, nil
	}
	return providers.Result{}, providerError(lastErr)
}

// specFor is what model's images should be: spec at the model's native
// size for the requested aspect.
func (g *Gateway) specFor(model string, spec QASpec) QASpec {
	if g.deps.Sizes != nil {
		spec.Width, spec.Height = g.deps.Sizes.NativeSize(model, spec.Width, spec.Height)
	}
	return spec
}

// call takes a slot at the provider's gate and calls it.
func (g *Gateway) call(ctx context.Context, model string, p providers.Provider, preq providers.Request) (providers.Result, error) {
	if !g.vendorAllows(ctx, g.gateName(model)) {
		g.m.limited.WithLabelValues("vendor_budget").Inc()
		return providers.Result{}, &providers.Error{Provider: g.gateName(model), Kind: providers.KindRateLimited, Message: "the vendor's shared per-minute budget is spent", RetryAfter: time.Second}
	}
	if gt := g.gates[g.gateName(model)]; gt != nil {
		release, err := gt.acquire(ctx)
		if err != nil {
			if errors.Is(err, errShed) {
				g.m.limited.WithLabelValues("shed").Inc()
			}
			return providers.Result{}, err
		}
		defer release()
	}
	return p.Generate(ctx, preq)
}

// inspect runs QA on every returned image and emits one QA event; no QA
// configured counts as a pass.
func (g *Gateway) inspect(ctx context.Context, res providers.Result, spec QASpec, r *Request, model string, attempt int) qa.Result {
	v := qa.Result{Pass: len(res.Images) > 0, Score: 1}
	if g.deps.QA == nil {
		return v
	}
	if len(res.Images) == 0 {
		v.Score, v.Reason = 0, "no images returned"
	}
	for _, img := range res.Images {
		iv := g.deps.QA.Check(ctx, img, spec)
		v.Checks = append(v.Checks, iv.Checks...)
		if v.OCRText == "" {
			v.OCRText = iv.OCRText
		}
		if !iv.Pass {
			v.Pass = false
			if v.Reason == "" {
				v.Reason = iv.Reason
			}
		}
		v.Score = min(v.Score, iv.Score)
	}
	g.emit(events.TopicQA, r.ID, &events.QAResult{
		Header: events.Header{EventID: r.ID + ":qa:" + strconv.Itoa(attempt), SchemaVersion: events.SchemaVersion, TS: g.deps.Now().UnixMilli(), Tenant: r.Tenant, RequestID: r.ID},
		Model:  model, Attempt: attempt, Pass: v.Pass, Score: v.Score, Checks: v.Checks, Reason: v.Reason, OCRText: v.OCRText,
		Shadow: r.shadowOf != "", LiveRequestID: r.shadowOf,
	})
	return v
}

// budgetAllows says whether escalating to next stays within the request's
// cost and latency limits.
func (g *Gateway) budgetAllows(o *Outcome, d *router.Decision, next string, r *Request) bool {
	if c := r.Constraints.MaxCostUSD; c > 0 {
		nextCost := 0.0
		for _, cand := range d.Candidates {
			if cand.Model == next {
				nextCost = cand.CostUSD * float64(r.N)
			}
		}
		if o.CostUSD+nextCost > c {
			return false
		}
	}
	if l := r.Constraints.MaxLatencyMS; l > 0 && g.deps.Now().Sub(o.Created).Milliseconds() >= l {
		return false
	}
	return true
}

func (g *Gateway) emit(topic, key string, ev any) {
	if g.deps.Events != nil {
		g.deps.Events.Enqueue(topic, key, ev)
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

// errorKind is what an attempt's error shows: the provider error's kind,
// never its text.
func errorKind(err error) string {
	var pe *providers.Error
	switch {
	case errors.As(err, &pe):
		return string(pe.Kind)
	case errors.Is(err, errShed):
		return CodeOverloaded
	case errors.Is(err, context.DeadlineExceeded):
		return string(providers.KindTimeout)
	case errors.Is(err, context.Canceled):
		return "canceled"
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

// refusalMovesOn reports whether err is a content-policy refusal that
// tenant opted in to having tried on the next model.
func (g *Gateway) refusalMovesOn(err error, tenant string) bool {
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindContentPolicy {
		return false
	}
	return slices.Contains(g.cfg.ContentPolicyFallback, tenant) || slices.Contains(g.cfg.ContentPolicyFallback, "*")
}

// providerError maps the last attempt's failure to what the caller sees.
func providerError(err error) *Error {
	var pe *providers.Error
	switch {
	case err == nil:
		return errNoModel
	case errors.As(err, &pe) && pe.Kind == providers.KindContentPolicy:
		msg := "the model refused this prompt under its content policy"
		if pe.Reason != "" {
			msg += " (" + pe.Provider + ": " + pe.Reason + ")"
		}
		return &Error{Code: CodeContentPolicy, Field: "prompt", Message: msg}
	case errors.As(err, &pe) && pe.Kind == providers.KindBadRequest:
		return &Error{Code: CodeInvalidRequest, Message: "the model rejected the request"}
	case errors.As(err, &pe) && pe.Kind == providers.KindUnsupported:
		return &Error{Code: CodeInvalidRequest, Message: "no model in the chain can do this request (the last one's limits refused it)"}
	case errors.Is(err, errShed):
		return errShed
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &pe) && pe.Kind == providers.KindTimeout):
		return &Error{Code: CodeTimeout, Message: "no model answered within the request deadline"}
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeClientClosed, Message: "request cancelled"}
	}
	return &Error{Code: CodeProviderFailed, Message: "every model in the fallback chain failed", RetryAfter: time.Second}
}
