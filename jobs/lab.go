package jobs

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/drift"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/experiments/ope"
	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// The lab runs the closed loop in process against the simulated world: a
// policy trained on exploration logs serves traffic, the world's truth
// changes mid-run, the streaming detectors and drift checks watch, and on
// an alarm the loop gathers a window of logged outcomes, builds a candidate
// (recalibration, rule audit, thresholds), gates it with off-policy
// evaluation, a drift check and a canary with a guardrail, and pushes it.
// Nothing in the loop reads the truth: the world is only called the way
// serve calls a provider, and success is what came back.

// Scenario is one change of the world's truth (or of its traffic).
type Scenario struct {
	Name        string
	Description string
	apply       func(*labWorld)
}

// Scenarios are the lab's named scenarios.
var Scenarios = []Scenario{
	{"quality-drop", "sim-typo's quality on text (short phrases and layouts) drops from ~0.95/0.79 to 0.40/0.35 success", func(w *labWorld) {
		w.quality["sim-typo"] = map[string]float64{sim.TaskTextRender: 0.40, sim.TaskTextLayout: 0.35}
	}},
	{"mix-shift-to-edits", "the traffic mix shifts from mostly generations to mostly edits (edit chains keep coming, three in four generations disappear)", func(w *labWorld) {
		w.editShift = true
	}},
	{"provider-slowdown", "sim-fast's provider slows down four-fold (p50 ~2.8 s -> ~11 s), so latency budgets time out", func(w *labWorld) {
		w.slow["sim-fast"] = 4
	}},
}

// ScenarioByName finds a scenario.
func ScenarioByName(name string) (Scenario, bool) {
	for _, s := range Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// labWorld is the simulated world with the scenario's change applied on
// top (success thinned to a new probability, latency stretched), as a
// sim.Caller: the lab's providers call it the way serve's call the world.
type labWorld struct {
	w         *sim.World
	seed      uint64
	changed   bool
	quality   map[string]map[string]float64 // model -> task -> new success probability
	slow      map[string]float64            // model -> latency factor
	editShift bool
}

var _ sim.Caller = (*labWorld)(nil)

// Call answers c as the world does, with the change applied once it is on.
func (lw *labWorld) Call(c sim.Call) sim.Outcome {
	o := lw.w.Call(c)
	if !lw.changed {
		return o
	}
	if f, ok := lw.slow[c.Model]; ok && o.ErrKind != providers.KindRateLimited {
		o.Latency = time.Duration(float64(o.Latency) * f)
		if dl := time.Duration(c.DeadlineMS) * time.Millisecond; c.DeadlineMS > 0 && o.ErrKind == "" && o.Latency > dl {
			o.ErrKind, o.Success, o.Quality, o.CostUSD, o.Latency = providers.KindTimeout, false, 0, 0, dl
		}
	}
	// the new probability is for a fresh request; edit chains keep the
	// world's decay, so the thinning ratio is q / P(fresh). A thinned
	// success gets a failing quality, so the rendered image shows it.
	if q, ok := lw.quality[c.Model][o.Task]; ok && o.Success {
		if fresh := lw.w.TrueP(c.Model, o.Task, 1); fresh > 0 && lw.draw(c.RequestID, c.Model, c.Attempt) >= q/fresh {
			o.Success = false
			o.Quality = sim.SuccessQuality * (o.Quality - sim.SuccessQuality) / (1 - sim.SuccessQuality)
		}
	}
	return o
}

// draw is the change's own uniform draw for a call, independent of the
// world's.
func (lw *labWorld) draw(id, model string, attempt int) float64 {
	h := uint64(14695981039346656037) ^ (lw.seed+0x51)*0x9e3779b97f4a7c15
	for _, s := range []string{id, "\xff", model} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
	}
	h ^= uint64(attempt) * 0xbf58476d1ce4e5b9
	h += 0x9e3779b97f4a7c15
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9
	h = (h ^ (h >> 27)) * 0x94d049bb133111eb
	h ^= h >> 31
	return (float64(h>>11) + 0.5) / (1 << 53)
}

// LabConfig sizes a lab run. Zero fields get defaults.
type LabConfig struct {
	Seed        uint64
	TrainEvents int       // exploration log the first policy is trained on; default 40000
	Before      int       // events served before the change; default 20000
	Baseline    int       // the first events of the live policy the detectors take as normal; default 6000
	Window      int       // events gathered after an alarm to build the candidate from; default 25000
	CanarySteps []float64 // canary traffic steps; default 0.1, 0.5
	CanaryUnits int       // requests per arm per step before the guardrail is read; default 1500
	After       int       // events measured after the push; default 20000
	MaxDuring   int       // give up when nothing is detected this long after the change; default 40000
	Epsilon     float64   // live exploration; default 0.1
	// WindowEpsilon is the exploration while the window after an alarm is
	// gathered; default 0.3.
	WindowEpsilon float64
	// Margin is the OPE gate's and the canary guardrail's tolerance on
	// success; default 0.01 (OPE) and 0.02 (canary).
	OPEMargin    float64
	CanaryMargin float64
	DriftEvery   int // feature drift checked every this many events on the last DriftSpan; default 500
	DriftSpan    int // default 2000
	Progress     func(format string, args ...any)
}

func (c *LabConfig) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.TrainEvents, 40000)
	def(&c.Before, 20000)
	def(&c.Baseline, 6000)
	def(&c.Window, 25000)
	def(&c.CanaryUnits, 1500)
	def(&c.After, 20000)
	def(&c.MaxDuring, 40000)
	def(&c.DriftEvery, 500)
	def(&c.DriftSpan, 2000)
	if c.CanarySteps == nil {
		c.CanarySteps = []float64{0.1, 0.5}
	}
	if c.Epsilon <= 0 {
		c.Epsilon = 0.1
	}
	if c.WindowEpsilon <= 0 {
		c.WindowEpsilon = 0.3
	}
	if c.OPEMargin <= 0 {
		c.OPEMargin = 0.01
	}
	if c.CanaryMargin <= 0 {
		c.CanaryMargin = 0.02
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
}

// Step is one recorded step of a pipeline run (the lab's and jobs
// pipeline's): what ran, whether it let the pipeline go on, and its report.
type Step struct {
	Name       string `json:"name"`
	Status     string `json:"status"` // ok | stopped | skipped
	Reason     string `json:"reason,omitempty"`
	AtEvent    int    `json:"at_event,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	Report     any    `json:"report,omitempty"`
}

// LabReport is what `routelab lab scenario NAME --json` prints.
type LabReport struct {
	Scenario    string `json:"scenario"`
	Description string `json:"description"`
	Seed        uint64 `json:"seed"`
	// ChangeAtEvent counts live events (after training) at the change.
	ChangeAtEvent int `json:"change_at_event"`
	// DetectedAfterEvents is the number of events from the change to the
	// first alarm; null when nothing was detected.
	DetectedAfterEvents *int     `json:"detected_after_events"`
	DetectedBy          []string `json:"detected_by"`
	SuccessBefore       float64  `json:"success_before"`
	SuccessDuring       float64  `json:"success_during"`
	SuccessAfter        float64  `json:"success_after"`
	CostBefore          float64  `json:"cost_before_usd"`
	CostDuring          float64  `json:"cost_during_usd"`
	CostAfter           float64  `json:"cost_after_usd"`
	EventsBefore        int      `json:"events_before"`
	EventsDuring        int      `json:"events_during"`
	EventsAfter         int      `json:"events_after"`
	InitialPolicy       string   `json:"initial_policy_version"`
	PushedPolicy        string   `json:"pushed_policy_version"`
	Pushed              bool     `json:"pushed"`
	StopReason          string   `json:"stop_reason,omitempty"`
	Steps               []Step   `json:"steps"`
	ElapsedMS           int64    `json:"elapsed_ms"`
}

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

// stream is an endless workload: the generator's items in order, with the
// edit shift applied once the world changed.
type stream struct {
	seed  uint64
	items []datasets.WorkItem
	pos   int
	batch int
	lw    *labWorld
	keep  uint64
}

func (s *stream) next() (datasets.WorkItem, error) {
	for {
		if s.pos >= len(s.items) {
			s.batch++
			items, err := datasets.Generate(s.seed*1000+uint64(s.batch), 20000)
			if err != nil {
				return datasets.WorkItem{}, err
			}
			s.items, s.pos = items, 0
		}
		it := s.items[s.pos]
		s.pos++
		it.Request.ID = fmt.Sprintf("b%d-%s", s.batch, it.Request.ID)
		if it.Request.Parent != "" {
			it.Request.Parent = fmt.Sprintf("b%d-%s", s.batch, it.Request.Parent)
		}
		if s.lw.editShift && s.lw.changed && it.Request.Mode == router.ModeGenerate {
			// keep one generation in four
			s.keep++
			if s.keep%4 != 0 {
				continue
			}
		}
		return it, nil
	}
}

// RunScenario runs one scenario end to end and reports it.
func RunScenario(ctx context.Context, sc Scenario, cfg LabConfig) (LabReport, error) {
	start := time.Now()
	cfg.defaults()
	rep := LabReport{Scenario: sc.Name, Description: sc.Description, Seed: cfg.Seed, DetectedBy: []string{}, Steps: []Step{}}
	cat, err := datasets.Catalog()
	if err != nil {
		return rep, err
	}
	lw := &labWorld{w: sim.NewWorld(cat, cfg.Seed), seed: cfg.Seed, quality: map[string]map[string]float64{}, slow: map[string]float64{}}
	sc.apply(lw)
	st := &stream{seed: cfg.Seed + 1, lw: lw, batch: -1}
	explore, err := datasets.Policy("explore")
	if err != nil {
		return rep, err
	}
	lb, err := lab.New(lab.Config{Catalog: cat, World: lw.w, Caller: lw}, explore)
	if err != nil {
		return rep, err
	}

	// 1. exploration log and the first policy
	cfg.Progress("lab: serving %d requests under the exploration policy", cfg.TrainEvents)
	var ex []router.Example
	for range cfg.TrainEvents {
		it, err := st.next()
		if err != nil {
			return rep, err
		}
		e := event{item: it, res: lb.Serve(ctx, it.Request)}
		if len(ex)%5000 == 4999 {
			cfg.Progress("lab: %d training examples", len(ex)+1)
		}
		if x, ok := e.example(); ok {
			ex = append(ex, x)
		}
	}
	live, err := router.Train(ex, router.TrainConfig{Name: "lab", Models: cat.Models, DefaultModel: cat.DefaultModel,
		Rules: explore.Rules, Epsilon: cfg.Epsilon, Source: "lab:" + sc.Name, Progress: cfg.Progress})
	if err != nil {
		return rep, fmt.Errorf("train first policy: %w", err)
	}
	rep.InitialPolicy = live.Version
	cfg.Progress("lab: live policy %s", live.Version)

	loop := &labLoop{cfg: cfg, lb: lb, lw: lw, st: st, live: live, trainEx: ex, rules: explore.Rules}
	// 2. before the change; the first Baseline events set the detectors
	var before tally
	for i := range cfg.Before {
		ev, err := loop.step(ctx, nil)
		if err != nil {
			return rep, err
		}
		before.add(ev)
		if i+1 == cfg.Baseline {
			loop.arm()
		}
		loop.observe(ev)
		if len(loop.alarms) > 0 {
			// a false alarm before the change: reported, and re-armed
			rep.Steps = append(rep.Steps, Step{Name: "false-alarm", Status: "ok", AtEvent: i + 1, Reason: strings.Join(loop.alarms, ", ")})
			loop.alarms = nil
			loop.arm()
		}
	}
	rep.ChangeAtEvent = cfg.Before
	rep.SuccessBefore, rep.CostBefore, rep.EventsBefore = before.rate(), before.meanCost(), int(before.n)
	lw.changed = true
	cfg.Progress("lab: change applied (%s) after %d events; success so far %.4f", sc.Name, cfg.Before, before.rate())

	// 3. during: until an alarm, then a window, then the gated push
	var during tally
	detected := -1
	for i := 0; i < cfg.MaxDuring && detected < 0; i++ {
		ev, err := loop.step(ctx, nil)
		if err != nil {
			return rep, err
		}
		during.add(ev)
		loop.observe(ev)
		if len(loop.alarms) > 0 {
			detected = i + 1
		}
	}
	if detected < 0 {
		rep.StopReason = fmt.Sprintf("nothing detected within %d events of the change", cfg.MaxDuring)
		rep.SuccessDuring, rep.CostDuring, rep.EventsDuring = during.rate(), during.meanCost(), int(during.n)
		rep.ElapsedMS = since(start)
		return rep, nil
	}
	rep.DetectedAfterEvents = &detected
	rep.DetectedBy = append(rep.DetectedBy, loop.alarms...)
	rep.Steps = append(rep.Steps, Step{Name: "detect", Status: "ok", AtEvent: cfg.Before + detected, Reason: strings.Join(loop.alarms, ", ")})
	cfg.Progress("lab: detected after %d events by %s", detected, strings.Join(loop.alarms, ", "))

	pushed, err := loop.pipeline(ctx, &rep, &during)
	if err != nil {
		return rep, err
	}
	rep.SuccessDuring, rep.CostDuring, rep.EventsDuring = during.rate(), during.meanCost(), int(during.n)
	rep.Pushed = pushed
	if pushed {
		rep.PushedPolicy = loop.live.Version
	}

	// 4. after
	var after tally
	for range cfg.After {
		ev, err := loop.step(ctx, nil)
		if err != nil {
			return rep, err
		}
		after.add(ev)
	}
	rep.SuccessAfter, rep.CostAfter, rep.EventsAfter = after.rate(), after.meanCost(), int(after.n)
	cfg.Progress("lab: success before %.4f, during %.4f, after %.4f", rep.SuccessBefore, rep.SuccessDuring, rep.SuccessAfter)
	rep.ElapsedMS = since(start)
	return rep, nil
}

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

// canaryState assigns requests to the canary's arms by unit hash.
type canaryState struct {
	cand    *router.Policy
	salt    string
	traffic float64
}

func (c *canaryState) assign(r router.Request) string {
	unit := r.Unit
	if unit == "" {
		unit = r.ID
	}
	if float64(experiments.Bucket(c.salt, unit)) < c.traffic*float64(experiments.Buckets) {
		return "candidate"
	}
	return "live"
}

// pipeline is the lab's jobs pipeline after an alarm: gather a window,
// build the candidate, OPE gate, drift check, canary, push.
func (l *labLoop) pipeline(ctx context.Context, rep *LabReport, during *tally) (bool, error) {
	cfg := l.cfg
	// window
	t0 := time.Now()
	var rows []Row
	var win []event
	served := l.live
	if cfg.WindowEpsilon > served.Epsilon {
		// explore more while the world is known to have moved: the
		// candidate needs outcomes of the models the live policy avoids
		q := *l.live
		q.Epsilon = cfg.WindowEpsilon
		q.Version = fmt.Sprintf("%s+eps%.2f", l.live.Version, cfg.WindowEpsilon)
		l.live = &q
	}
	for range cfg.Window {
		ev, err := l.step(ctx, nil)
		if err != nil {
			return false, err
		}
		during.add(ev)
		win = append(win, ev)
		if r, ok := ev.row(); ok {
			rows = append(rows, r)
		}
	}
	windowPolicy := l.live
	l.live = served
	w := Window{From: time.UnixMilli(int64(l.n - cfg.Window)), To: time.UnixMilli(int64(l.n))}
	// candidates: the live policy recalibrated (thresholds re-chosen, or
	// kept), and a refit on the exploration log plus the window; OPE on the
	// window's held-out rows picks among those that pass the gate
	type candidate struct {
		name string
		p    *router.Policy
		rep  any
	}
	var cands []candidate
	bins := BinsFromRows(rows)
	for _, keep := range []bool{false, true} {
		name := "recalibrated"
		if keep {
			name = "recalibrated-live-thresholds"
		}
		cand, crep, err := BuildCandidate(l.live, bins, rows, w, CandidateOptions{KeepThresholds: keep, Recalibrate: RecalibrateOptions{Name: l.live.Name}})
		if err != nil {
			rep.Steps = append(rep.Steps, Step{Name: "recalibrate", Status: "stopped", Reason: err.Error(), DurationMS: since(t0)})
			rep.StopReason = "recalibrate: " + err.Error()
			return false, nil
		}
		cfg.Progress("lab: candidate %s (%s): ece %.4f -> %.4f, dropped rules %v, thresholds %v", cand.Version, name, crep.ECEBefore, crep.ECEAfter, crep.DroppedRules, crep.Thresholds)
		cands = append(cands, candidate{name, cand, summarizeCandidate(crep)})
	}
	// the refit never sees the held-out rows OPE evaluates on
	var wex []router.Example
	for _, ev := range win {
		if r, ok := ev.row(); ok && !r.Holdout() {
			if x, ok := ev.example(); ok {
				wex = append(wex, x)
			}
		}
	}
	refit, err := router.Train(append(append([]router.Example{}, l.trainEx...), wex...), router.TrainConfig{Name: l.live.Name, Models: l.live.Models,
		DefaultModel: l.live.DefaultModel, Rules: l.rules, Epsilon: cfg.Epsilon, Source: "lab refit: exploration log + window"})
	if err == nil {
		cands = append(cands, candidate{"refit", refit, map[string]any{"policy_version": refit.Version, "examples": len(l.trainEx) + len(wex), "thresholds": refit.Thresholds}})
		cfg.Progress("lab: candidate %s (refit on %d examples)", refit.Version, len(l.trainEx)+len(wex))
	} else {
		cfg.Progress("lab: refit failed: %v", err)
	}
	rep.Steps = append(rep.Steps, Step{Name: "recalibrate", Status: "ok", AtEvent: rep.ChangeAtEvent + int(during.n), DurationMS: since(t0), Report: cands})

	// OPE on the window's held-out rows
	t0 = time.Now()
	var logged []LoggedRequest
	for _, ev := range win {
		r, ok := ev.row()
		if !ok || !r.Holdout() {
			continue
		}
		logged = append(logged, LoggedRequest{Req: ev.item.Request, Model: ev.model(), Propensity: ev.res.Route.Propensity, Y: r.Y})
	}
	var reports []map[string]any
	best := -1
	var bestRep OPEReport
	for i, c := range cands {
		orep := EvaluateLogged(logged, c.p, windowPolicy, w, OPEOptions{Options: ope.Options{Seed: cfg.Seed}, Margin: cfg.OPEMargin})
		reports = append(reports, map[string]any{"candidate": c.name, "report": orep})
		cfg.Progress("lab: ope %s: dr %.4f [%.4f, %.4f] vs live %.4f, ess %.0f, pass %v %s", c.name, orep.DR.Value, orep.DR.CILow, orep.DR.CIHigh, orep.LiveValue, orep.ESS, orep.Pass, orep.Reason)
		if orep.Pass && (best < 0 || orep.DR.Value > bestRep.DR.Value) {
			best, bestRep = i, orep
		}
	}
	st := Step{Name: "ope", Status: "ok", DurationMS: since(t0), Report: reports}
	if best < 0 {
		st.Status, st.Reason = "stopped", "no candidate passed the OPE gate"
		rep.Steps = append(rep.Steps, st)
		rep.StopReason = "ope: no candidate passed the gate"
		return false, nil
	}
	cand := cands[best].p
	st.Reason = fmt.Sprintf("chose %s (%s): DR %.4f vs live %.4f", cands[best].name, cand.Version, bestRep.DR.Value, bestRep.LiveValue)
	rep.Steps = append(rep.Steps, st)

	// drift check on the window: recorded; input drift does not block a
	// candidate fitted on the drifted window itself
	checks := l.driftChecks()
	var breached []string
	for _, c := range checks {
		if c.Breached {
			breached = append(breached, c.Name)
		}
	}
	dst := Step{Name: "drift", Status: "ok", Report: checks}
	if len(breached) > 0 {
		dst.Reason = "input drift in " + strings.Join(breached, ", ") + "; the candidate was fitted on the drifted window"
	}
	rep.Steps = append(rep.Steps, dst)

	// canary with a guardrail on success, ramped by steps
	canary := &canaryState{cand: cand, salt: "lab-canary-" + cand.Version}
	for _, traffic := range cfg.CanarySteps {
		t0 = time.Now()
		canary.traffic = traffic
		var arms = map[string]*tally{"live": {}, "candidate": {}}
		for arms["candidate"].n < float64(cfg.CanaryUnits) || arms["live"].n < float64(cfg.CanaryUnits) {
			ev, err := l.step(ctx, canary)
			if err != nil {
				return false, err
			}
			during.add(ev)
			arms[ev.arm].add(ev)
		}
		c, t := arms["live"], arms["candidate"]
		est := experiments.TwoProportion(c.succ, c.n, t.succ, t.n, 0.05)
		step := Step{Name: fmt.Sprintf("canary-%.0f%%", 100*traffic), Status: "ok", DurationMS: since(t0), Report: map[string]any{
			"traffic": traffic, "live_success": c.rate(), "candidate_success": t.rate(), "live_n": c.n, "candidate_n": t.n,
			"delta": est.Delta, "ci_low": est.CILow, "ci_high": est.CIHigh, "margin": cfg.CanaryMargin}}
		if est.CIHigh < -cfg.CanaryMargin || est.Delta < -cfg.CanaryMargin && est.PValue < 0.05 {
			step.Status = "stopped"
			step.Reason = fmt.Sprintf("guardrail: candidate success %.4f vs live %.4f (delta %.4f, CI [%.4f, %.4f])", t.rate(), c.rate(), est.Delta, est.CILow, est.CIHigh)
			rep.Steps = append(rep.Steps, step)
			rep.StopReason = "canary rolled back: " + step.Reason
			return false, nil
		}
		rep.Steps = append(rep.Steps, step)
		cfg.Progress("lab: canary %.0f%%: candidate %.4f vs live %.4f", 100*traffic, t.rate(), c.rate())
	}

	// promote
	rep.Steps = append(rep.Steps, Step{Name: "push", Status: "ok", Reason: "promoted " + cand.Version + " (parent " + l.live.Version + ")", AtEvent: rep.ChangeAtEvent + int(during.n)})
	l.live = cand
	return true, nil
}

// summarizeCandidate keeps the parts of a candidate report worth printing.
func summarizeCandidate(c CandidateReport) map[string]any {
	var models []map[string]any
	for _, m := range c.Models {
		models = append(models, map[string]any{"model": m.Model, "fit_rows": m.FitRows, "ece_before": m.Before.ECE, "ece_after": m.After.ECE, "changed": m.Changed})
	}
	return map[string]any{
		"policy_version": c.PolicyVersion, "parent_version": c.Parent, "ece_before": c.ECEBefore, "ece_after": c.ECEAfter,
		"brier_before": c.BrierBefore, "brier_after": c.BrierAfter, "thresholds": c.Thresholds, "dropped_rules": c.DroppedRules,
		"rule_audit": c.Rules, "models": models, "rows": c.Rows,
	}
}
