// Package lab is the simulated lab: it serves workload requests through
// the serving core (gateway.Serve) exactly as `routelab serve` does (the
// same policy code, the same providers behind the same retrier and
// breakers, automated QA on real rendered images, fallback, escalation,
// edit-chain restarts), with the simulated world's models in virtual time.
// A lab figure is then a statement about production code.
//
// `routelab sim`, `routelab policy eval` and the lab scenarios (lab/scenario) all
// serve through a Lab.
package lab

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/registry"
	"github.com/routelab/routelab/providers/resilience"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// Tenant is the tenant every lab request is served for.
const Tenant = "lab"

// Config sets up a lab. Zero fields take the defaults.
type Config struct {
	Catalog router.Catalog
	World   *sim.World // required
	// Caller, when set, answers the simulated calls instead of World (a
	// scenario's change of the world).
	Caller sim.Caller
	// Start is the virtual time of the first request; default 2026-11-01.
	Start time.Time
	// Gap is the virtual time between two requests' arrivals; default 100 ms.
	Gap time.Duration
	// RequestTimeout is serve's deadline for one request, all attempts;
	// default 60 s, as serve's.
	RequestTimeout time.Duration
	// Gateway holds the serving limits; its SampleRate defaults to none
	// (the lab keeps no images for review).
	Gateway gateway.Config
	// Seed seeds the draws the serving code makes besides the world's
	// (the retrier's backoff jitter), so that a lab run is a function of
	// its seeds; default 1.
	Seed uint64
	// Events receives every event the gateway emits (nil: none kept
	// beyond each Result).
	Events gateway.Sink
	// Feedback is the share of served requests on which the simulated user
	// sends a signal through the gateway's feedback path, as loadgen's
	// users do: thumbs_up when the returned image's hidden quality is a
	// success (sim.SuccessQuality), thumbs_down when it is not. The jobs'
	// labels (jobs.Labels) read success from QA and these signals, so with
	// Feedback 1 the logged label of a served request is its hidden
	// success unless QA failed it. The draw is a hash of the request id.
	// Default 0: no feedback.
	Feedback float64
	// Assigner, when set, assigns requests to experiment arms as serve's
	// experiments do (gateway.ExperimentAssigner); nil: no experiments.
	Assigner gateway.Assigner
	// OCR, when set, turns on serve's legibility check (gateway.NewTextQA):
	// the output of a request whose prompt asks for words in the image
	// (router.TargetTexts) is read by OCR, and lettering the simulated model
	// garbled fails QA with text_illegible and escalates, as in production.
	// Readings are cached by image digest, so an image served again is not
	// read again. nil: no legibility check (QA passes garbled lettering
	// that the pixel checks pass; Result.Text still holds the truth).
	OCR qa.OCR
	// OCRTimeout bounds one reading, in real time (OCR takes no virtual
	// time); default 2 minutes. In serve a check that runs out passes
	// unjudged; in the lab it would make a run depend on the machine's
	// load, so the limit is far above a reading's cost and the run's
	// TextStats count any that fail.
	OCRTimeout time.Duration
	// OCRSample is the share of prompts whose outputs the legibility check
	// reads, drawn by a hash of the prompt (requests of the others are
	// served without it, as before OCR): a Tesseract reading costs ~0.3 s
	// of CPU and nearly every output with text is a distinct image, so a
	// long run reads a sample. By prompt, not by request: every image of a
	// prompt is then read or none is, so an image is always first read as
	// rendered (the render cache hands later requests the bytes alone, and
	// a reading of those could differ) and a run's readings do not depend
	// on which request drew an image first. Default (0): all.
	OCRSample float64
}

// Lab serves one request at a time through a gateway in virtual time.
type Lab struct {
	cfg   Config
	clock *Clock
	live  *gateway.LivePolicy
	spy   *decisionSpy
	gw    *gateway.Gateway
	rec   *recorder
	calls *callLog
	text  *qa.TextChecker // nil: no legibility check
	qa    *labQA
	// shadows holds the mirrors of the request being served; Serve runs
	// them after the live result, as serve's pool does after the response.
	shadows shadowQueue
}

// New builds a lab serving under policy p.
func New(cfg Config, p *router.Policy) (*Lab, error) {
	if cfg.World == nil {
		return nil, errors.New("lab: no world")
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.UnixMilli(1793491200000).UTC()
	}
	if cfg.Gap <= 0 {
		cfg.Gap = 100 * time.Millisecond
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	if cfg.Gateway.SampleRate == 0 {
		cfg.Gateway.SampleRate = -1
	}
	l := &Lab{cfg: cfg, clock: NewClock(cfg.Start), rec: &recorder{next: cfg.Events}}
	var caller sim.Caller = cfg.World
	if cfg.Caller != nil {
		caller = cfg.Caller
	}
	l.calls = &callLog{next: caller}
	reg, err := registry.Build(cfg.Catalog, registry.Config{
		SimulateMissing: true,
		World:           cfg.World,
		Caller:          l.calls,
		// The render cache is keyed by what a picture depends on; a lab run
		// replays few prompts many times, so a bigger one pays.
		Sim: sim.Options{LatencyScale: 1, Sleep: l.clock.Sleep, Now: l.clock.Now, CacheBytes: 256 << 20},
		Env: resilience.Env{Now: l.clock.Now, Sleep: l.clock.Sleep, Rand: seededRand(cfg.Seed)},
	})
	if err != nil {
		return nil, fmt.Errorf("lab providers: %w", err)
	}
	l.live = gateway.NewLivePolicy(p, reg.Breakers)
	l.spy = &decisionSpy{next: l.live}
	providerOf := map[string]string{}
	for _, m := range cfg.Catalog.Models {
		providerOf[m.Name] = m.Provider
	}
	check := qa.New(qa.DefaultThresholds()).WithCache(4096)
	l.qa = &labQA{plain: gateway.NewQA(check)}
	if cfg.OCR != nil {
		if cfg.OCRTimeout <= 0 {
			cfg.OCRTimeout = 2 * time.Minute
		}
		if cfg.OCRSample <= 0 {
			cfg.OCRSample = 1
		}
		// Room for every reading a run makes: an evicted one would be read
		// again, from the full-size bytes when the render cache no longer
		// hands over the small picture, and could read differently.
		l.text = qa.NewTextChecker(cfg.OCR, qa.TextThresholds{Timeout: cfg.OCRTimeout}).WithCache(1 << 18)
		// failed readings are counted in TextStats, not logged per request
		l.qa.text = gateway.NewTextQA(check, l.text, slog.New(slog.DiscardHandler))
	}
	l.cfg = cfg
	l.gw = gateway.New(cfg.Gateway, gateway.Deps{
		Policy:     l.spy,
		Providers:  reg.Providers,
		ProviderOf: providerOf,
		QA:         l.qa,
		Events:     l.rec,
		Now:        l.clock.Now,
		Assigner:   cfg.Assigner,
		Shadows:    &l.shadows,
	})
	return l, nil
}

// TextQA reports whether the lab runs the legibility check (Config.OCR).
func (l *Lab) TextQA() bool { return l.text != nil }

// TextStats counts the legibility checks so far, the images OCR read for
// them (the others came from the cache of readings) and the readings that
// failed; zero without Config.OCR.
func (l *Lab) TextStats() qa.TextStats {
	if l.text == nil {
		return qa.TextStats{}
	}
	return l.text.Stats()
}

// SetPolicy makes p live for the next requests (a push).
func (l *Lab) SetPolicy(p *router.Policy) { l.live.Store(p) }

// Policy is the live policy.
func (l *Lab) Policy() *router.Policy { return l.live.Policy() }

// Now is the lab's virtual time.
func (l *Lab) Now() time.Time { return l.clock.Now() }

// Result is one served request: what the gateway returned and emitted,
// and what only the lab knows.
type Result struct {
	// Outcome is what the gateway returned, nil on an error. Its Images
	// are dropped: a lab run keeps the results of tens of thousands of
	// requests, and each image holds its bytes, base64 and decoded pixels
	// (over a megabyte at 1024 px); what a chain's next edit needs stays in
	// the gateway's chains.
	Outcome  *gateway.Outcome
	Err      *gateway.Error
	Decision *events.Decision // the decision event, emitted on errors too
	Route    router.Decision  // the policy's decision (Greedy, P ...), on errors too
	QA       []*events.QAResult
	// Quality is the world's drawn quality of the returned image (0 when
	// none): hidden from the gateway, logged for analysis.
	Quality float64
	// Restarted: the item's parent was not in the gateway's edit chains
	// (evicted, or it failed), so the edit was sent as a new chain, as a
	// client does on parent_not_found.
	Restarted bool
	// Signal is the user's feedback signal event on the request (nil when
	// none was sent; see Config.Feedback).
	Signal *events.Signal
	// Shadow is the request's mirror to a shadow experiment's candidate,
	// served after it (nil when none).
	Shadow *ShadowResult
	// Text is QA's observation of the served image's lettering beside the
	// hidden truth, for a request whose prompt asks for words in the image
	// (router.TargetTexts); nil for the others.
	Text *TextResult
}

// TextResult is what QA's legibility check observed of a served image's
// lettering, and the truth it observes.
type TextResult struct {
	// Judged: the legibility check read the served image (Config.OCR is
	// set, the prompt is in its sample, the words are in a script OCR
	// reads and OCR answered). Legible is its verdict, Score its
	// legibility, Read what OCR read.
	Judged  bool
	Legible bool
	Score   float64
	Read    string
	// Hidden: the served image's hidden quality is a success, which is
	// when the simulated model drew the words intact (sim's lettering).
	Hidden bool
}

// ShadowResult is a mirror of a live request: its events, and the world's
// drawn quality of its image (hidden from the gateway).
type ShadowResult struct {
	Decision *events.Decision
	QA       []*events.QAResult
	Quality  float64
}

// Served reports whether images came back.
func (r *Result) Served() bool { return r.Outcome != nil }

// QAPassed reports whether the request was served with an output that
// passed QA: the success the serving loop observes.
func (r *Result) QAPassed() bool { return r.Served() && r.Outcome.QAPass }

// Succeeded reports whether the request was served with an output whose
// hidden quality is a success (sim.SuccessQuality): the truth QA observes.
func (r *Result) Succeeded() bool { return r.Served() && r.Quality >= sim.SuccessQuality }

// Serve serves one workload request as a client would send it: its id is
// the request id, an edit names its parent's id and is re-sent without it
// when the gateway no longer knows the parent.
func (l *Lab) Serve(ctx context.Context, req router.Request) Result {
	l.clock.Advance(l.cfg.Gap)
	r := gateway.Request{
		ID: req.ID, Tenant: Tenant, Unit: req.Unit, Mode: req.Mode, Prompt: req.Prompt,
		N: 1, Width: req.Width, Height: req.Height, Format: "png", Tier: req.Tier,
		Constraints: req.Constraints, Pin: req.Pin, ParentID: req.Parent,
	}
	if r.Tier == "" {
		r.Tier = router.TierStandard
	}
	if r.Width <= 0 || r.Height <= 0 {
		r.Width, r.Height = 1024, 1024
	}
	refs := req.RefCount
	if r.ParentID != "" {
		refs-- // the parent's output is the image being edited
	}
	if r.Mode == router.ModeEdit && refs < 1 && r.ParentID == "" {
		refs = 1
	}
	r.Refs = gateway.Loaded(references(refs))
	res := l.serve(ctx, r)
	if res.Err != nil && res.Err.Code == gateway.CodeParentNotFound {
		r.ParentID = ""
		r.Refs = gateway.Loaded(references(max(req.RefCount, 1)))
		res = l.serve(ctx, r)
		res.Restarted = true
	}
	if res.Served() && l.cfg.Feedback > 0 && unitDraw(r.ID) < l.cfg.Feedback {
		l.feedback(&res, r.ID)
	}
	res.Shadow = l.runShadows(ctx)
	return res
}

// shadowQueue keeps the mirrors the gateway hands over while a request is
// served; the lab runs them in turn, after the live result.
type shadowQueue struct{ fs []func(context.Context) }

func (q *shadowQueue) Go(f func(context.Context)) { q.fs = append(q.fs, f) }

// runShadows serves the queued mirrors and returns the last one's result.
func (l *Lab) runShadows(ctx context.Context) *ShadowResult {
	if len(l.shadows.fs) == 0 {
		return nil
	}
	fs := l.shadows.fs
	l.shadows.fs = nil
	var out *ShadowResult
	for _, f := range fs {
		l.rec.reset()
		l.calls.reset()
		f(&virtualDeadline{Context: ctx, clock: l.clock, deadline: l.clock.Now().Add(l.cfg.RequestTimeout)})
		if d := l.rec.decision; d != nil {
			out = &ShadowResult{Decision: d, QA: l.rec.qa, Quality: l.calls.quality[d.Model]}
		}
	}
	return out
}

// feedback sends the simulated user's verdict on the served image through
// the gateway, which emits it as a signal event.
func (l *Lab) feedback(res *Result, id string) {
	kind := "thumbs_down"
	if res.Quality >= sim.SuccessQuality {
		kind = "thumbs_up"
	}
	l.rec.reset()
	if _, err := l.gw.Feedback(gateway.Signal{RequestID: id, Tenant: Tenant, Kind: kind, Value: res.Quality, User: "lab"}); err != nil {
		// the gateway served id to Tenant a moment ago: a refusal is a bug
		panic(fmt.Sprintf("lab feedback on %s: %v", id, err))
	}
	res.Signal = l.rec.signal
}

// unitDraw is a uniform draw in [0, 1) from a request id.
func unitDraw(id string) float64 { return idDraw(id, "feedback") }

// idDraw is a uniform draw in [0, 1) from a request id (or a prompt);
// draws of other salts are independent.
func idDraw(id, salt string) float64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte("\x00" + salt))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// labQA is the gateway's QA: with the legibility check (text) for the
// requests in the OCR sample, without it (plain) for the others. The lab
// serves one request at a time, and sets on before each.
type labQA struct {
	plain, text gateway.QA
	on          bool
}

func (q *labQA) Check(ctx context.Context, img providers.Image, spec gateway.QASpec) qa.Result {
	if q.on {
		return q.text.Check(ctx, img, spec)
	}
	return q.plain.Check(ctx, img, spec)
}

func (l *Lab) serve(ctx context.Context, r gateway.Request) Result {
	l.rec.reset()
	l.calls.reset()
	l.spy.last = router.Decision{}
	// a request's mirrors (runShadows) have its prompt, and are read alike
	l.qa.on = l.qa.text != nil && (l.cfg.OCRSample >= 1 || idDraw(r.Prompt, "ocr") < l.cfg.OCRSample)
	ctx = &virtualDeadline{Context: ctx, clock: l.clock, deadline: l.clock.Now().Add(l.cfg.RequestTimeout)}
	o, err := l.gw.Serve(ctx, r)
	res := Result{Outcome: o, Decision: l.rec.decision, QA: l.rec.qa, Route: l.spy.last}
	if err != nil {
		var ge *gateway.Error
		if !errors.As(err, &ge) {
			ge = &gateway.Error{Code: "internal", Message: err.Error()}
		}
		res.Err, res.Outcome = ge, nil
		return res
	}
	res.Quality = l.calls.quality[o.Model]
	o.Images = nil
	if len(router.TargetTexts(r.Prompt)) > 0 {
		res.Text = textResult(res.QA, o.Model, res.Quality)
	}
	return res
}

// textResult reads the legibility check of the served image (the last QA
// event of model, the one served) beside its hidden quality.
func textResult(evs []*events.QAResult, model string, quality float64) *TextResult {
	t := &TextResult{Hidden: quality >= sim.SuccessQuality}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Model != model {
			continue
		}
		for _, c := range evs[i].Checks {
			if c.Name == qa.CheckText {
				t.Judged, t.Legible, t.Score, t.Read = true, c.Pass, c.Value, evs[i].OCRText
			}
		}
		break
	}
	return t
}

// seededRand is a deterministic source of [0,1) draws, safe for concurrent
// use as resilience.Env.Rand must be.
func seededRand(seed uint64) func() float64 {
	if seed == 0 {
		seed = 1
	}
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, 0x6c6162)) // "lab"
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

// references are the reference images a workload request brings: the
// same small PNG each time, as loadgen sends.
func references(n int) [][]byte {
	refs := make([][]byte, n)
	for i := range refs {
		refs[i] = datasets.ReferencePNG()
	}
	return refs
}

// virtualDeadline is a context whose deadline is in virtual time: it never
// fires on a wall-clock timer (nothing in the lab waits in real time), but
// Deadline and Err answer against the lab's clock, which is what the
// simulated providers and the retrier read.
type virtualDeadline struct {
	context.Context
	clock    *Clock
	deadline time.Time
}

func (v *virtualDeadline) Deadline() (time.Time, bool) { return v.deadline, true }

func (v *virtualDeadline) Err() error {
	if err := v.Context.Err(); err != nil {
		return err
	}
	if !v.clock.Now().Before(v.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// recorder keeps the events of the request being served and passes every
// event on.
type recorder struct {
	next     gateway.Sink
	decision *events.Decision
	qa       []*events.QAResult
	signal   *events.Signal
}

func (r *recorder) reset() { r.decision, r.qa, r.signal = nil, nil, nil }

func (r *recorder) Enqueue(topic, key string, ev any) {
	switch e := ev.(type) {
	case *events.Decision:
		r.decision = e
	case *events.QAResult:
		r.qa = append(r.qa, e)
	case *events.Signal:
		r.signal = e
	}
	if r.next != nil {
		r.next.Enqueue(topic, key, ev)
	}
}

// callLog passes calls to the world and keeps, per model, the quality it
// drew last for the request being served.
type callLog struct {
	next    sim.Caller
	quality map[string]float64
}

func (c *callLog) reset() { c.quality = map[string]float64{} }

func (c *callLog) Call(call sim.Call) sim.Outcome {
	o := c.next.Call(call)
	c.quality[call.Model] = o.Quality
	return o
}

// decisionSpy keeps the last decision of the policy it wraps.
type decisionSpy struct {
	next gateway.Policy
	last router.Decision
}

func (s *decisionSpy) Decide(req router.Request) router.Decision {
	s.last = s.next.Decide(req)
	return s.last
}
