package jobs

import (
	"context"
	"math"
	"sort"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/drift"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments/ope"
	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// tally sums served outcomes of a period.
type tally struct{ n, succ, cost float64 }

func (t *tally) add(e event) {
	t.n++
	t.cost += e.cost()
	if e.success() {
		t.succ++
	}
}
func (t tally) rate() float64     { return t.succ / math.Max(t.n, 1) }
func (t tally) meanCost() float64 { return t.cost / math.Max(t.n, 1) }

// labLoop is the live side of the lab: the policy serving, the detectors,
// the logged rows.
type labLoop struct {
	cfg  LabConfig
	lb   *lab.Lab
	lw   *labWorld
	st   *stream
	live *router.Policy
	n    int // live events served

	trainEx []router.Example // the exploration log the first policy was trained on
	rules   []router.Rule    // candidate rules a refit audits

	// detectors, armed from a baseline of logged events
	recent   []event // ring of the last DriftSpan events
	baseline []event
	cusums   map[string]*drift.CUSUM
	slowMS   float64
	alarms   []string
	refRoute map[string]float64
	refMode  map[string]float64
	refDepth []float64
	refEdges []float64
}

type event struct {
	item datasets.WorkItem
	res  lab.Result
	arm  string // canary arm, "" outside a canary
}

// model is the routed model ("" when none could serve).
func (e *event) model() string { return e.res.Route.Model }

// success is the truth the loop never reads: an image came back whose
// drawn quality is a success.
func (e *event) success() bool { return e.res.Served() && e.res.Quality >= sim.SuccessQuality }

func (e *event) cost() float64 { return e.res.Decision.CostUSD }

func (e *event) latencyMS() int64 { return e.res.Decision.LatencyMS }

// first is the routed model's first attempt, and whether it tells anything
// about the model's quality: an image that QA judged, or a timeout.
func (e *event) first() (a events.Attempt, label bool) {
	if e.model() == "" || len(e.res.Decision.Attempts) == 0 {
		return a, false
	}
	a = e.res.Decision.Attempts[0]
	return a, a.Status == "ok" || a.Status == "qa_fail" || a.Status == "timeout"
}

// example is the training example serve's logs give for this request
// (router.ExampleFromDecision, as training on ClickHouse rows reads them).
func (e *event) example() (router.Example, bool) {
	return router.ExampleFromDecision(e.res.Decision, e.item.Request.Width, e.item.Request.Height)
}

// step serves one request, under the canary's assignment when one runs.
func (l *labLoop) step(ctx context.Context, canary *canaryState) (event, error) {
	it, err := l.st.next()
	if err != nil {
		return event{}, err
	}
	p := l.live
	arm := ""
	if canary != nil {
		arm = canary.assign(it.Request)
		if arm == "candidate" {
			p = canary.cand
		}
	}
	l.lb.SetPolicy(p)
	res := l.lb.Serve(ctx, it.Request)
	l.n++
	if l.n%5000 == 0 {
		l.cfg.Progress("lab: %d requests served since training", l.n)
	}
	return event{item: it, res: res, arm: arm}, nil
}

// row turns an event into a logged row for the candidate builder.
func (e event) row() (Row, bool) {
	first, label := e.first()
	d := &e.res.Route
	if !label {
		return Row{}, false
	}
	r := Row{ID: e.item.Request.ID, Tier: e.item.Request.Tier, Rule: d.Rule, Model: d.Model, Propensity: d.Propensity}
	if r.Rule == "pin" {
		return Row{}, false
	}
	if first.Status == "ok" {
		r.Y = 1
	}
	for _, c := range d.Candidates {
		r.Cands = append(r.Cands, Cand{Model: c.Model, P: c.P, Cost: c.CostUSD, Eligible: c.Eligible})
	}
	r.LatencyMS = float64(first.LatencyMS)
	return r, true
}

// Stream names the lab watches with CUSUM; per-model streams follow the
// routed model's first attempt.
func (l *labLoop) arm() {
	base := l.baseline
	if len(base) == 0 {
		base = l.recent
	}
	l.cusums = map[string]*drift.CUSUM{}
	var cc drift.CUSUMConfig
	cc = cc.Defaults()
	lat := make([]float64, 0, len(base))
	for _, e := range base {
		lat = append(lat, float64(e.latencyMS()))
	}
	sort.Float64s(lat)
	l.slowMS = ope.Quantile(lat, 0.9)
	counts := map[string][2]float64{}
	add := func(name string, bad bool) {
		c := counts[name]
		c[0]++
		if bad {
			c[1]++
		}
		counts[name] = c
	}
	for _, e := range base {
		l.feed(e, add)
	}
	for name, c := range counts {
		if c[0] < float64(cc.MinRef) {
			continue
		}
		l.cusums[name] = cc.NewCUSUM(c[1] / c[0])
	}
	l.refRoute, l.refMode = map[string]float64{}, map[string]float64{}
	var depths []float64
	for _, e := range base {
		l.refRoute[e.model()]++
		l.refMode[string(e.item.Request.Mode)]++
		depths = append(depths, float64(e.item.Request.EditDepth))
	}
	l.refEdges = drift.QuantileEdges(depths, 10)
	l.refDepth = drift.Histogram(l.refEdges, depths)
	l.baseline = nil
}

// feed maps an event to its stream outcomes: user-facing failure, QA-level
// failure of the routed model, slowness over the baseline p90, overall and
// per routed model.
func (l *labLoop) feed(e event, add func(string, bool)) {
	m := e.model()
	if m == "" {
		return
	}
	// what the loop sees: QA's verdict on what was returned, not the truth
	add("fail", !(e.res.Served() && e.res.Outcome.QAPass))
	slow := float64(e.latencyMS()) > l.slowMS && l.slowMS > 0
	add("latency_slow", slow)
	first, label := e.first()
	if label {
		add("fail:"+m, first.Status != "ok")
	}
	if len(e.res.Decision.Attempts) > 0 {
		add("latency_slow:"+m, slow)
	}
}

// observe feeds one event to the detectors (once armed) and keeps the ring
// of recent events; before arming it accumulates the baseline.
func (l *labLoop) observe(e event) {
	l.recent = append(l.recent, e)
	if len(l.recent) > l.cfg.DriftSpan {
		l.recent = l.recent[len(l.recent)-l.cfg.DriftSpan:]
	}
	if l.cusums == nil {
		l.baseline = append(l.baseline, e)
		return
	}
	l.feed(e, func(name string, bad bool) {
		if d, ok := l.cusums[name]; ok && d.Add(bad) && d.AlarmAt() == d.N() {
			l.alarms = append(l.alarms, "cusum:"+name)
		}
	})
	if l.n%l.cfg.DriftEvery == 0 && len(l.recent) >= l.cfg.DriftSpan {
		for _, c := range l.driftChecks() {
			if c.Breached {
				l.alarms = append(l.alarms, "drift:"+c.Name)
			}
		}
	}
}

// driftChecks compares the recent events with the baseline: route share,
// mode share and edit-depth distribution.
func (l *labLoop) driftChecks() []drift.Check {
	var th drift.Thresholds
	route, mode := map[string]float64{}, map[string]float64{}
	var depths []float64
	for _, e := range l.recent {
		route[e.model()]++
		mode[string(e.item.Request.Mode)]++
		depths = append(depths, float64(e.item.Request.EditDepth))
	}
	_, rr, rc := alignShares(norm(l.refRoute), 1, route)
	_, mr, mc := alignShares(norm(l.refMode), 1, mode)
	scale := func(xs []float64, n float64) []float64 {
		for i := range xs {
			xs[i] *= n
		}
		return xs
	}
	nb := sumMap(l.refRoute)
	rs := th.RouteShare(scale(rr, nb), rc)
	ms := th.Categorical("mode", scale(mr, nb), mc)
	ds := th.Binned("edit_depth", l.refDepth, drift.Histogram(l.refEdges, depths))
	return []drift.Check{rs, ms, ds}
}

func norm(m map[string]float64) map[string]float64 {
	t := sumMap(m)
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = v / math.Max(t, 1)
	}
	return out
}

func sumMap(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}
