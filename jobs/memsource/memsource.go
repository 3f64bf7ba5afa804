// Package memsource keeps decision, QA, signal and review events in memory
// and reads them as jobs.Source: the lab runs the real jobs pipeline
// (jobs.RunPipeline) on what its simulated traffic logged, and tests run the
// jobs without ClickHouse. It evaluates, per event, what jobs/chsource
// pushes into ClickHouse: the labels (jobs.Labels.Success), the labelled
// decisions, the held-out split (jobs.Holdout, ClickHouse's cityHash64),
// the bins of profiles and rates. Sampling differs: a limit keeps a hash
// sample of about the same size, not the same requests.
//
// Feed it with the events serving emits, in any order, from any goroutine:
//
//	src := memsource.New(jobs.DefaultLabels())
//	src.AddDecision(&d) // and AddQA, AddSignal, AddReview; or pass src
//	                    // as the gateway's event sink (Enqueue)
//	rep, err := jobs.RunPipeline(ctx, src, live, w, canary, pusher,
//		jobs.PipelineOptions{Audit: src.Audit, ...}, progress)
package memsource

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-faster/city"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments/ope"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/router"
)

var _ jobs.Source = (*Source)(nil)

// Source is an in-memory event store read as jobs.Source. The zero value
// is not usable; call New.
type Source struct {
	labels jobs.Labels

	mu        sync.Mutex
	decisions []events.Decision
	byEvent   map[string]int // event id -> index in decisions
	sorted    bool           // decisions in time order
	qa        map[string][]events.QAResult
	signals   []events.Signal
	sigByReq  map[string][]int
	reviews   map[string][]events.Review
	audits    []events.Audit
}

// New returns an empty source whose labels follow l.
func New(l jobs.Labels) *Source {
	return &Source{labels: l, byEvent: map[string]int{}, sorted: true, qa: map[string][]events.QAResult{},
		sigByReq: map[string][]int{}, reviews: map[string][]events.Review{}}
}

// AddDecision stores a decision; a redelivery (same event id) replaces the
// first copy, as reading the decisions table with FINAL would.
func (s *Source) AddDecision(d *events.Decision) {
	if d.Shadow {
		return // a shadow mirror served no user: not the live traffic (see chsource's liveOnly)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.byEvent[d.EventID]; ok && d.EventID != "" {
		s.decisions[i] = *d
		return
	}
	if n := len(s.decisions); n > 0 && d.TS < s.decisions[n-1].TS {
		s.sorted = false
	}
	s.byEvent[d.EventID] = len(s.decisions)
	s.decisions = append(s.decisions, *d)
}

// AddQA stores a QA result.
func (s *Source) AddQA(q *events.QAResult) {
	if q.Shadow {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.qa[q.RequestID] = append(s.qa[q.RequestID], *q)
}

// AddSignal stores a user signal.
func (s *Source) AddSignal(sg *events.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sigByReq[sg.RequestID] = append(s.sigByReq[sg.RequestID], len(s.signals))
	s.signals = append(s.signals, *sg)
}

// AddReview stores a review.
func (s *Source) AddReview(r *events.Review) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reviews[r.RequestID] = append(s.reviews[r.RequestID], *r)
}

// Enqueue stores an event as the gateway emits it (it is a gateway.Sink,
// so the lab can pass it the gateway's events): decisions, QA results,
// signals, reviews and audit events, by pointer or by value; other events
// are ignored.
func (s *Source) Enqueue(_, _ string, ev any) {
	switch e := ev.(type) {
	case *events.Decision:
		s.AddDecision(e)
	case events.Decision:
		s.AddDecision(&e)
	case *events.QAResult:
		s.AddQA(e)
	case events.QAResult:
		s.AddQA(&e)
	case *events.Signal:
		s.AddSignal(e)
	case events.Signal:
		s.AddSignal(&e)
	case *events.Review:
		s.AddReview(e)
	case events.Review:
		s.AddReview(&e)
	case *events.Audit:
		_ = s.Audit(context.Background(), *e)
	case events.Audit:
		_ = s.Audit(context.Background(), e)
	}
}

// Audit stores a job's audit event (jobs.PipelineOptions.Audit).
func (s *Source) Audit(_ context.Context, a events.Audit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audits = append(s.audits, a)
	return nil
}

// Audits returns the audit events stored so far, oldest first.
func (s *Source) Audits() []events.Audit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audits)
}

// inWindow reports whether a millisecond time is in w, as ClickHouse
// compares ts_ms.
func inWindow(w jobs.Window, ts int64) bool { return ts >= w.From.UnixMilli() && ts < w.To.UnixMilli() }

// window returns the decisions in w in time order. The caller holds mu.
func (s *Source) window(w jobs.Window) []*events.Decision {
	if !s.sorted {
		sort.SliceStable(s.decisions, func(i, j int) bool { return s.decisions[i].TS < s.decisions[j].TS })
		for i := range s.decisions {
			s.byEvent[s.decisions[i].EventID] = i
		}
		s.sorted = true
	}
	lo := sort.Search(len(s.decisions), func(i int) bool { return s.decisions[i].TS >= w.From.UnixMilli() })
	var out []*events.Decision
	for i := lo; i < len(s.decisions) && s.decisions[i].TS < w.To.UnixMilli(); i++ {
		out = append(out, &s.decisions[i])
	}
	return out
}

// success is the request's label under s.labels, counting the other events
// received from the window's start on. The caller holds mu.
func (s *Source) success(d *events.Decision, w jobs.Window) bool {
	from := w.From.UnixMilli()
	var qa []events.QAResult
	for _, q := range s.qa[d.RequestID] {
		if q.TS >= from {
			qa = append(qa, q)
		}
	}
	var sig []events.Signal
	for _, i := range s.sigByReq[d.RequestID] {
		if s.signals[i].TS >= from {
			sig = append(sig, s.signals[i])
		}
	}
	var rev []events.Review
	for _, r := range s.reviews[d.RequestID] {
		if r.TS >= from {
			rev = append(rev, r)
		}
	}
	return s.labels.Success(d, qa, sig, rev)
}

// labelled is one labelled decision: the routed model (the first
// attempt's) and its label.
type labelled struct {
	d      *events.Decision
	routed string
	y      float64
}

// labelled returns the labelled decisions of policyVersion in w (see
// jobs.LoggedSource), in time order. The caller holds mu.
func (s *Source) labelled(w jobs.Window, policyVersion string) []labelled {
	var out []labelled
	for _, d := range s.window(w) {
		if d.PolicyVersion != policyVersion || d.Propensity <= 0 {
			continue
		}
		routed := d.Model
		if len(d.Attempts) > 0 {
			switch d.Attempts[0].Status {
			case "ok", "qa_fail", "timeout":
			default:
				continue // a provider error or rate limit says nothing
			}
			routed = d.Attempts[0].Model
		}
		l := labelled{d: d, routed: routed}
		if routed == d.Model && s.success(d, w) {
			l.y = 1
		}
		out = append(out, l)
	}
	return out
}

// sample keeps about limit of the labelled decisions when the policy has
// more than limit decisions in w (limit <= 0: all), by a hash of the
// request id independent of the held-out split. The caller holds mu.
func (s *Source) sample(ls []labelled, w jobs.Window, policyVersion string, limit int, frac float64) []labelled {
	if limit <= 0 {
		return ls
	}
	n := 0
	for _, d := range s.window(w) {
		if d.PolicyVersion == policyVersion {
			n++
		}
	}
	if float64(n)*frac <= float64(limit) {
		return ls
	}
	keep := uint64(float64(limit) / (float64(n) * frac) * 1e6)
	var out []labelled
	for _, l := range ls {
		if city.CH64([]byte(l.d.RequestID+"\x00sample"))%1000000 < keep {
			out = append(out, l)
		}
	}
	return out
}

func candP(d *events.Decision, model string) (float64, bool) {
	for _, c := range d.Candidates {
		if c.Model == model {
			return c.P, true
		}
	}
	return 0, false
}

func row(l labelled) jobs.Row {
	d := l.d
	r := jobs.Row{ID: d.RequestID, Tier: router.Tier(d.Tier), Rule: d.Rule, Model: l.routed, Propensity: d.Propensity, Y: l.y,
		HoldoutSet: true, HoldoutVal: jobs.Holdout(d.RequestID)}
	if len(d.Attempts) > 0 {
		r.LatencyMS = float64(d.Attempts[0].LatencyMS)
	}
	for _, c := range d.Candidates {
		r.Cands = append(r.Cands, jobs.Cand{Model: c.Model, P: c.P, Cost: c.CostUSD, Eligible: c.Eligible})
	}
	return r
}

// CalibrationBins aggregates the labelled decisions of policyVersion in w
// into fine bins of the routed model's logged P (jobs.BinsFromRows).
func (s *Source) CalibrationBins(_ context.Context, w jobs.Window, policyVersion string) ([]jobs.CalBin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows []jobs.Row
	for _, l := range s.labelled(w, policyVersion) {
		rows = append(rows, row(l))
	}
	return jobs.BinsFromRows(rows), nil
}

// Rows returns the labelled decisions of policyVersion in w with their
// candidates, a hash sample of about limit when there are more.
func (s *Source) Rows(_ context.Context, w jobs.Window, policyVersion string, limit int) ([]jobs.Row, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.sample(s.labelled(w, policyVersion), w, policyVersion, limit, 1)
	out := make([]jobs.Row, 0, len(ls))
	for _, l := range ls {
		out = append(out, row(l))
	}
	return out, nil
}

// Logged returns the labelled decisions of policyVersion in w for replay,
// in time order, a hash sample of about limit when there are more.
func (s *Source) Logged(_ context.Context, w jobs.Window, policyVersion string, limit int, holdoutOnly bool) ([]jobs.Logged, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.labelled(w, policyVersion)
	frac := 1.0
	if holdoutOnly {
		frac = 1.0 / jobs.HoldoutMod
		kept := ls[:0:0]
		for _, l := range ls {
			if jobs.Holdout(l.d.RequestID) {
				kept = append(kept, l)
			}
		}
		ls = kept
	}
	ls = s.sample(ls, w, policyVersion, limit, frac)
	out := make([]jobs.Logged, 0, len(ls))
	for _, l := range ls {
		d, f := l.d, &l.d.Features
		p, _ := candP(d, l.routed)
		lg := jobs.Logged{RequestID: d.RequestID, TS: d.TS, Tenant: d.Tenant, Mode: d.Mode, Tier: d.Tier, Prompt: d.Prompt,
			RefCount: f.RefCount, EditDepth: f.EditDepth, Aspect: f.Aspect, TextHeavy: f.TextHeavy, Preserve: f.Preserve,
			MaxLatency: f.MaxLatency, MaxCost: f.MaxCostUSD, Model: l.routed, Propensity: d.Propensity, PolicyP: p, Y: l.y,
			Holdout: jobs.Holdout(d.RequestID)}
		for _, c := range d.Candidates {
			lg.CandModels = append(lg.CandModels, c.Model)
			lg.CandCosts = append(lg.CandCosts, c.CostUSD)
		}
		out = append(out, lg)
	}
	return out, nil
}

// Count is the number of decisions in w, of policyVersion unless "".
func (s *Source) Count(_ context.Context, w jobs.Window, policyVersion string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, d := range s.window(w) {
		if policyVersion == "" || d.PolicyVersion == policyVersion {
			n++
		}
	}
	return n, nil
}

// RouteCounts counts policyVersion's decisions before t by served model.
func (s *Source) RouteCounts(_ context.Context, policyVersion string, before time.Time) (map[string]float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]float64{}
	for i := range s.decisions {
		if d := &s.decisions[i]; d.PolicyVersion == policyVersion && d.TS < before.UnixMilli() {
			out[d.Model]++
		}
	}
	return out, nil
}

// EventCut is the time before which frac of w's decisions fall: the
// linearly interpolated quantile of their times (what ClickHouse's
// quantile gives on fewer than 8,192 rows); with none, the time frac into
// the window.
func (s *Source) EventCut(_ context.Context, w jobs.Window, frac float64) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds := s.window(w)
	if len(ds) == 0 {
		return w.From.Add(time.Duration(frac * float64(w.To.Sub(w.From)))), nil
	}
	ts := make([]float64, len(ds))
	for i, d := range ds {
		ts[i] = float64(d.TS)
	}
	t := ope.Quantile(ts, frac) // linear interpolation at frac*(n-1), as ClickHouse's quantile
	return time.UnixMilli(int64(t)), nil
}

// numeric is feature f of d as a number (see jobs.Feature*).
func numeric(d *events.Decision, f string, resetDepth int) float64 {
	switch f {
	case jobs.FeaturePromptWords:
		if d.Prompt == "" {
			return 0
		}
		return float64(strings.Count(d.Prompt, " ") + 1)
	case jobs.FeaturePromptLen:
		return float64(d.Features.PromptLen)
	case jobs.FeatureRefCount:
		return float64(d.Features.RefCount)
	case jobs.FeatureEditDepth:
		if d.Reset {
			return float64(resetDepth)
		}
		return float64(d.Features.EditDepth)
	case jobs.FeatureAspect:
		return d.Features.Aspect
	case jobs.FeatureLatencyMS:
		return float64(d.LatencyMS)
	case jobs.FeatureCostUSD:
		return d.CostUSD
	}
	return 0
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// values are feature f of d as the strings ClickHouse's toString gives.
func values(d *events.Decision, f string, resetDepth int) []string {
	switch f {
	case jobs.FeatureMode:
		return []string{d.Mode}
	case jobs.FeatureTier:
		if d.Tier == "" {
			return []string{string(router.TierStandard)}
		}
		return []string{d.Tier}
	case jobs.FeatureModel:
		return []string{d.Model}
	case jobs.FeatureTextHeavy:
		return []string{flag(d.Features.TextHeavy)}
	case jobs.FeaturePreserve:
		return []string{flag(d.Features.Preserve)}
	case jobs.FeatureRule:
		if d.Rule == "" {
			return []string{"classifier"}
		}
		return []string{d.Rule}
	case jobs.FeatureKeyword:
		return d.Features.Keywords
	}
	return []string{strconv.FormatFloat(numeric(d, f, resetDepth), 'g', -1, 64)}
}

// Profile counts spec's features over w, split at cut.
func (s *Source) Profile(_ context.Context, w jobs.Window, spec jobs.ProfileSpec, cut time.Time) (early, late jobs.ProfileCounts, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	early, late = jobs.NewProfileCounts(spec), jobs.NewProfileCounts(spec)
	for _, d := range s.window(w) {
		side := &late
		if !cut.IsZero() && d.TS < cut.UnixMilli() {
			side = &early
		}
		side.N++
		for i, f := range spec.Num {
			side.Hist[i][jobs.Bin(numeric(d, f, spec.ResetDepth), spec.Edges[i])]++
		}
		for i, f := range spec.Cat {
			for _, v := range values(d, f, spec.ResetDepth) {
				side.Cats[i][v]++
			}
		}
	}
	return early, late, nil
}

// Rates aggregates w into buckets of step: decisions, QA failures,
// escalations and latency bins by the decision's time, thumbs-down and
// regenerate signals by their own (at most one per decision of the bucket).
func (s *Source) Rates(_ context.Context, w jobs.Window, step time.Duration) ([]jobs.RateBucket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stepMS := max(step.Milliseconds(), 1)
	var out []jobs.RateBucket
	at := map[int64]int{}
	for _, d := range s.window(w) {
		b := d.TS / stepMS
		i, ok := at[b]
		if !ok {
			i = len(out)
			at[b] = i
			out = append(out, jobs.RateBucket{Start: time.UnixMilli(b * stepMS), Lat: make([]float64, jobs.LatBins)})
		}
		r := &out[i]
		r.N++
		if !d.QAPass {
			r.QAFail++
		}
		if d.Escalated {
			r.Escalated++
		}
		r.Lat[jobs.LatBin(float64(d.LatencyMS))]++
	}
	for _, sg := range s.signals {
		if !inWindow(w, sg.TS) || (sg.Signal != "thumbs_down" && sg.Signal != "regenerate") {
			continue
		}
		i, ok := at[sg.TS/stepMS]
		if !ok {
			continue // a bucket without decisions has no rate to add its signals to
		}
		r := &out[i]
		if sg.Signal == "thumbs_down" {
			r.ThumbsDown = min(r.ThumbsDown+1, r.N)
		} else {
			r.Regenerated = min(r.Regenerated+1, r.N)
		}
	}
	return out, nil
}
