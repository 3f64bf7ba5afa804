package scenario

import (
	"context"
	"maps"
	"math"
	"slices"
	"sort"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/drift"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments/ope"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/memsource"
	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/router"
)

// tally sums served outcomes of a period: the report's hidden success,
// or (in a canary's arms) the logged label; and the requests with target
// text, as QA observed them and in truth.
type tally struct {
	n, succ, cost float64
	text          lab.TextTally
}

func (t *tally) add(e event, success bool) {
	t.n++
	t.cost += e.cost()
	t.text.Add(&e.res)
	if success {
		t.succ++
	}
}
func (t tally) rate() float64     { return t.succ / math.Max(t.n, 1) }
func (t tally) meanCost() float64 { return t.cost / math.Max(t.n, 1) }

// labLoop is the live side of the lab: the policy serving, the detectors,
// the source its events feed.
type labLoop struct {
	cfg    Config
	lb     *lab.Lab
	lw     *labWorld
	st     *stream
	src    *memsource.Source // fed by the lab's gateway (lab.Config.Events)
	labels jobs.Labels       // src's labels, which the canary reads too
	live   *router.Policy
	n      int    // live events served
	period *tally // the report's period every served event counts in

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
// drawn quality is a success. Only the report's figures count it.
func (e *event) success() bool { return e.res.Succeeded() }

// label is the request's success as the jobs see it: jobs.Labels over its
// logged events (the decision, QA results, the user's signal). A request
// that got no image is a failure under any definition (the source labels
// it so: its routed model's image was not served).
func (e *event) label(l jobs.Labels) bool {
	if !e.res.Served() || e.res.Decision == nil {
		return false
	}
	var qa []events.QAResult
	for _, q := range e.res.QA {
		qa = append(qa, *q)
	}
	var sig []events.Signal
	if e.res.Signal != nil {
		sig = append(sig, *e.res.Signal)
	}
	return l.Success(e.res.Decision, qa, sig, nil)
}

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
	ev := event{item: it, res: l.lb.Serve(ctx, it.Request), arm: arm}
	l.n++
	if l.n%5000 == 0 {
		l.cfg.Progress("lab: %d requests served since training", l.n)
	}
	if l.period != nil {
		l.period.add(ev, ev.success())
	}
	return ev, nil
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
	add("fail", !e.res.QAPassed())
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
	rr, rc := align(l.refRoute, route)
	mr, mc := align(l.refMode, mode)
	rs := th.RouteShare(rr, rc)
	ms := th.Categorical("mode", mr, mc)
	ds := th.Binned("edit_depth", l.refDepth, drift.Histogram(l.refEdges, depths))
	return []drift.Check{rs, ms, ds}
}

// align puts two count maps over one sorted category list.
func align(ref, cur map[string]float64) (r, c []float64) {
	cats := slices.Collect(maps.Keys(ref))
	for k := range cur {
		if _, ok := ref[k]; !ok {
			cats = append(cats, k)
		}
	}
	slices.Sort(cats)
	for _, k := range cats {
		r = append(r, ref[k])
		c = append(c, cur[k])
	}
	return r, c
}
