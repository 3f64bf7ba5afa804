package gateway

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/router"
)

// ShadowPlan is a shadow experiment's mirror of one live request: the
// candidate (a model pin or a policy) it is served by after the live
// response, and the arm recorded on the mirror's events.
type ShadowPlan struct {
	Arm    events.Arm
	Model  string // pin; "" = route with Policy
	Policy Policy // nil: the live policy
	CapUSD float64
}

// ShadowRunner runs mirrors after the live response: Go must not block
// the live request (drop the work rather than wait).
type ShadowRunner interface {
	Go(func(ctx context.Context))
}

// ShadowPool is the ShadowRunner of serve: a few workers behind a bounded
// queue; a mirror that finds the queue full is dropped (counted), never
// waited for. Close stops the workers after the queued mirrors.
type ShadowPool struct {
	ctx     context.Context
	cancel  context.CancelFunc
	work    chan func(context.Context)
	wg      sync.WaitGroup
	mu      sync.Mutex
	closed  bool
	dropped int64
}

var _ ShadowRunner = (*ShadowPool)(nil)

// NewShadowPool starts workers goroutines taking from a queue of queue
// mirrors.
func NewShadowPool(workers, queue int) *ShadowPool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &ShadowPool{ctx: ctx, cancel: cancel, work: make(chan func(context.Context), queue)}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for f := range p.work {
				f(p.ctx)
			}
		}()
	}
	return p
}

// Go queues f, or drops it when the queue is full or the pool closed.
func (p *ShadowPool) Go(f func(ctx context.Context)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.dropped++
		return
	}
	select {
	case p.work <- f:
	default:
		p.dropped++
	}
}

// Dropped counts the mirrors dropped.
func (p *ShadowPool) Dropped() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// Close lets the queued mirrors finish until ctx ends (then cancels them)
// and stops the workers.
func (p *ShadowPool) Close(ctx context.Context) {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.work)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		p.cancel()
		<-done
	}
	p.cancel()
}

// shadowSpend is the candidates' spend per experiment and UTC day.
type shadowSpend struct {
	mu    sync.Mutex
	day   string
	spent map[string]float64
}

func (s *shadowSpend) allow(exp string, capUSD float64, now time.Time) bool {
	if capUSD <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := now.UTC().Format(time.DateOnly); d != s.day {
		s.day, s.spent = d, map[string]float64{}
	}
	return s.spent[exp] < capUSD
}

// reserve books usd of the day's cap for a mirror about to call its
// candidate, unless that would pass the cap: mirrors run concurrently, so
// the check must hold what is in flight, not only what has finished.
func (s *shadowSpend) reserve(exp string, capUSD, usd float64, now time.Time) bool {
	if capUSD <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := now.UTC().Format(time.DateOnly); d != s.day {
		s.day, s.spent = d, map[string]float64{}
	}
	if s.spent[exp]+usd > capUSD {
		return false
	}
	s.spent[exp] += usd
	return true
}

func (s *shadowSpend) add(exp string, usd float64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := now.UTC().Format(time.DateOnly); d != s.day {
		s.day, s.spent = d, map[string]float64{}
	}
	s.spent[exp] += usd
}

// mirror hands the live request's shadow to the runner once the live
// outcome is complete. The mirror reads copies only: the live request's
// loaded references, its routed request, its QA spec. When the live output
// was sampled for review, the mirror's is stored too, so the console can
// pair them in the blind pairwise queue (reviewers judge the candidate on
// real traffic); the pairs are the review sample's share of the mirrors.
func (g *Gateway) mirror(live *Request, req router.Request, refs [][]byte, spec QASpec, plan *ShadowPlan, liveDec *events.Decision) {
	if plan == nil || g.deps.Shadows == nil {
		return
	}
	if !g.spend.allow(plan.Arm.Experiment, plan.CapUSD, g.deps.Now()) {
		g.m.limited.WithLabelValues("shadow_cap").Inc()
		return
	}
	r := *live
	r.ID, r.shadowOf = live.ID+":shadow", live.ID
	var pair *reviewPair
	if liveDec != nil && liveDec.Sampled {
		pair = &reviewPair{refKeys: slices.Clone(liveDec.RefKeys)}
	}
	g.deps.Shadows.Go(func(ctx context.Context) { g.serveShadow(ctx, r, req, refs, spec, plan, pair) })
}

// reviewPair says a mirror's output joins its live output in the pairwise
// review queue; refKeys are the live output's stored references.
type reviewPair struct {
	refKeys []string
}

// serveShadow serves the mirror of a live request: the candidate's decision
// and attempts with QA, as Serve does, and its events marked shadow with
// the live request's id. It touches nothing the live path reads: no edit
// chain, no daily image cap, no feedback record; its image is stored only
// to pair it with a sampled live output (pair non-nil).
func (g *Gateway) serveShadow(ctx context.Context, r Request, req router.Request, refs [][]byte, spec QASpec, plan *ShadowPlan, pair *reviewPair) {
	start := g.deps.Now()
	o := &Outcome{ID: r.ID, Created: start}
	req.ID = r.ID
	if plan.Model != "" {
		req.Pin = plan.Model
	}
	policy := g.deps.Policy
	if plan.Policy != nil {
		policy = plan.Policy
	}
	d := policy.Decide(req)
	if plan.Model != "" && d.Model != plan.Model {
		// the candidate model cannot serve this request (mode, size,
		// references): a mirror routed otherwise would not be the candidate
		g.m.limited.WithLabelValues("shadow_ineligible").Inc()
		return
	}
	// The mirror is served as the candidate would be if it were live: a
	// pin keeps its fallbacks and QA escalation, as the live side does,
	// so the two are compared like for like (the mirror's attempts show
	// when the candidate itself failed).
	// the candidate's list price is booked before the call and trued up
	// after it
	booked := d.CostUSD * float64(max(r.N, 1))
	if !g.spend.reserve(plan.Arm.Experiment, plan.CapUSD, booked, g.deps.Now()) {
		g.m.limited.WithLabelValues("shadow_cap").Inc()
		return
	}
	dec := &events.Decision{
		Header: events.Header{EventID: r.ID + ":decision", SchemaVersion: events.SchemaVersion, TS: start.UnixMilli(), Tenant: r.Tenant, RequestID: r.ID},
		Unit:   r.Unit, Mode: string(r.Mode), Tier: string(r.Tier), Prompt: r.Prompt, ParentID: r.ParentID,
		PolicyVersion: d.PolicyVersion, Rule: d.Rule, Propensity: d.Propensity, Explored: d.Explored,
		Candidates: d.Candidates, Features: d.Features.Event(&req), Arms: []events.Arm{plan.Arm},
		Shadow: true, LiveRequestID: r.shadowOf,
	}
	defer func() {
		dec.LatencyMS = g.deps.Now().Sub(start).Milliseconds()
		if plan.CapUSD > 0 {
			g.spend.add(plan.Arm.Experiment, o.CostUSD-booked, g.deps.Now())
		}
		g.emit(events.TopicDecisions, r.ID, dec)
	}()
	if d.Model == "" {
		dec.Status, dec.ErrorCode = "error", errNoModel.Code
		return
	}
	preq := g.providerRequest(&r, req.EditDepth, refs)
	preq.RequestID, preq.Seed = r.ID, fnv1a(r.shadowOf) // the live request's seed: like for like
	res, aerr := g.attempt(ctx, o, &d, preq, spec, &r)
	dec.Attempts, dec.Escalated, dec.Fallback, dec.CostUSD = o.Attempts, o.Escalated, o.Fallback, o.CostUSD
	if aerr != nil {
		dec.Status, dec.ErrorCode = "error", aerr.Code
		return
	}
	dec.Model, dec.Provider, dec.QAPass, dec.Images, dec.Status = o.Model, o.Provider, o.QAPass, len(res.Images), "ok"
	if pair != nil && len(res.Images) > 0 && g.deps.Blobs != nil {
		key, err := g.deps.Blobs.Put(ctx, res.Images[0].Bytes)
		if err != nil {
			g.log.Warn("store shadow image for pairwise review", "request_id", r.ID, "err", err)
			return
		}
		dec.Sampled, dec.BlobKey, dec.RefKeys = true, key, pair.refKeys
	}
}
