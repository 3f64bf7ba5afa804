// Package scenario runs routelab's closed loop in process against the
// simulated world (`routelab lab scenario NAME`): a policy trained on an
// exploration log serves traffic through the lab (lab.Lab: the real
// gateway in virtual time), the world's truth changes mid-run, streaming
// detectors watch the served outcomes, and on an alarm the loop gathers a
// window and runs the jobs pipeline (jobs.RunPipeline: recalibrate, OPE
// gate, drift check, canary, push) on an in-memory source
// (jobs/memsource) that the gateway's events fed, with a canary served
// through the lab and a push that makes the candidate live in it.
//
// Nothing in the loop reads the truth: the world is only called the way
// the gateway calls a provider; the detectors read QA's verdicts, and the
// pipeline and the canary read the labels of jobs.Labels from the events:
// QA and the signals the simulated users send (lab.Config.Feedback). The
// report's success figures are the hidden truth, for the reader.
package scenario

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/memsource"
	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

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

// ByName finds a scenario.
func ByName(name string) (Scenario, bool) {
	for _, s := range Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Config sizes a lab run. Zero fields get defaults.
type Config struct {
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
	// Feedback is the share of served requests the simulated users send a
	// thumbs_up or thumbs_down on (lab.Config.Feedback); default 1, when
	// the labels are the users' verdicts alone (see Run).
	Feedback float64
	// OCR and OCRSample turn on serve's legibility check in the scenario's
	// labs (lab.Config.OCR, OCRSample); nil: none.
	OCR       qa.OCR
	OCRSample float64
	Progress  func(format string, args ...any)
}

func (c *Config) defaults() {
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
	if c.Feedback <= 0 {
		c.Feedback = 1
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
}

// Report is what `routelab lab scenario NAME --json` prints. Its success
// and cost figures are the hidden truth of every request served in the
// period (an image came back whose drawn quality is a success).
type Report struct {
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
	// TextQA says whether the labs ran serve's OCR legibility check
	// (Config.OCR); Text has each period's requests with target text,
	// success as QA observed it next to the hidden truth; OCR counts the
	// live lab's checks, reads and failed readings.
	TextQA bool                       `json:"text_qa"`
	Text   map[string]lab.TextSummary `json:"text"`
	OCR    qa.TextStats               `json:"ocr"`
	// Steps are the lab's own (false-alarm, detect, window) and then the
	// pipeline's (jobs.PipelineReport.Steps).
	Steps     []jobs.Step `json:"steps"`
	ElapsedMS int64       `json:"elapsed_ms"`
}

// Run runs one scenario end to end and reports it.
func Run(ctx context.Context, sc Scenario, cfg Config) (Report, error) {
	start := time.Now()
	cfg.defaults()
	rep := Report{Scenario: sc.Name, Description: sc.Description, Seed: cfg.Seed, DetectedBy: []string{}, Steps: []jobs.Step{},
		TextQA: cfg.OCR != nil, Text: map[string]lab.TextSummary{}}
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
	// every event the gateway emits (decisions, QA results, the users'
	// signals) lands in the source the pipeline reads, as production's
	// land in ClickHouse
	labels := jobs.DefaultLabels()
	if cfg.Feedback >= 1 {
		// every served image gets its user's verdict, so the verdicts
		// alone are the label (`jobs pipeline --label-ignore-qa`):
		// automated QA is a proxy, which in the simulated world fails
		// about one good image in five and passes some bad ones. With
		// partial feedback QA stands in for the missing verdicts.
		labels.RequireQA = false
	}
	src := memsource.New(labels)
	lb, err := lab.New(lab.Config{Catalog: cat, World: lw.w, Caller: lw, Seed: cfg.Seed, Events: src, Feedback: cfg.Feedback,
		OCR: cfg.OCR, OCRSample: cfg.OCRSample}, explore)
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

	loop := &labLoop{cfg: cfg, lb: lb, lw: lw, st: st, src: src, labels: labels, live: live}
	// 2. before the change; the first Baseline events set the detectors
	var before tally
	loop.period = &before
	for i := range cfg.Before {
		ev, err := loop.step(ctx, nil)
		if err != nil {
			return rep, err
		}
		if i+1 == cfg.Baseline {
			loop.arm()
		}
		loop.observe(ev)
		if len(loop.alarms) > 0 {
			// a false alarm before the change: reported, and re-armed
			rep.Steps = append(rep.Steps, jobs.Step{Name: "false-alarm", Status: "ok", AtEvent: i + 1, Reason: strings.Join(loop.alarms, ", ")})
			loop.alarms = nil
			loop.arm()
		}
	}
	rep.ChangeAtEvent = cfg.Before
	rep.SuccessBefore, rep.CostBefore, rep.EventsBefore = before.rate(), before.meanCost(), int(before.n)
	rep.Text["before"] = before.text.Summary()
	lw.changed = true
	cfg.Progress("lab: change applied (%s) after %d events; success so far %.4f", sc.Name, cfg.Before, before.rate())

	// 3. during: until an alarm, then a window, then the pipeline
	var during tally
	loop.period = &during
	detected := -1
	for i := 0; i < cfg.MaxDuring && detected < 0; i++ {
		ev, err := loop.step(ctx, nil)
		if err != nil {
			return rep, err
		}
		loop.observe(ev)
		if len(loop.alarms) > 0 {
			detected = i + 1
		}
	}
	if detected < 0 {
		rep.StopReason = fmt.Sprintf("nothing detected within %d events of the change", cfg.MaxDuring)
		rep.SuccessDuring, rep.CostDuring, rep.EventsDuring = during.rate(), during.meanCost(), int(during.n)
		rep.Text["during"], rep.OCR = during.text.Summary(), lb.TextStats()
		rep.ElapsedMS = since(start)
		return rep, nil
	}
	rep.DetectedAfterEvents = &detected
	rep.DetectedBy = append(rep.DetectedBy, loop.alarms...)
	rep.Steps = append(rep.Steps, jobs.Step{Name: "detect", Status: "ok", AtEvent: cfg.Before + detected, Reason: strings.Join(loop.alarms, ", ")})
	cfg.Progress("lab: detected after %d events by %s", detected, strings.Join(loop.alarms, ", "))

	prep, err := loop.pipeline(ctx, &rep)
	if err != nil {
		return rep, err
	}
	rep.SuccessDuring, rep.CostDuring, rep.EventsDuring = during.rate(), during.meanCost(), int(during.n)
	rep.Text["during"] = during.text.Summary()
	rep.Pushed = prep.Pushed
	if prep.Pushed {
		rep.PushedPolicy = prep.Version
	} else {
		rep.StopReason = prep.Stopped + ": " + prep.Reason
	}

	// 4. after
	var after tally
	loop.period = &after
	for range cfg.After {
		if _, err := loop.step(ctx, nil); err != nil {
			return rep, err
		}
	}
	rep.SuccessAfter, rep.CostAfter, rep.EventsAfter = after.rate(), after.meanCost(), int(after.n)
	rep.Text["after"], rep.OCR = after.text.Summary(), lb.TextStats()
	cfg.Progress("lab: success before %.4f, during %.4f, after %.4f", rep.SuccessBefore, rep.SuccessDuring, rep.SuccessAfter)
	rep.ElapsedMS = since(start)
	return rep, nil
}

func since(t time.Time) int64 { return time.Since(t).Milliseconds() }
