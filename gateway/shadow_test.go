package gateway_test

import (
	"context"
	"fmt"
	"image/color"
	"testing"
	"time"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// queued is a ShadowRunner that keeps the mirrors until the test runs them.
type queued struct{ fs []func(context.Context) }

func (q *queued) Go(f func(context.Context)) { q.fs = append(q.fs, f) }

func (q *queued) run() {
	for _, f := range q.fs {
		f(context.Background())
	}
	q.fs = nil
}

// shadowGateway routes to "fast"; a shadow experiment mirrors share of the
// requests to "strong" with a daily cap.
func shadowGateway(t *testing.T, share, capUSD float64, runner gateway.ShadowRunner, strong *gatewaytest.Provider, policy ...gateway.Policy) (*gateway.Gateway, *gatewaytest.Producer) {
	t.Helper()
	return shadowGatewayWith(t, shadowOpts{cfg: gateway.Config{SampleRate: -1}}, share, capUSD, runner, strong, policy...)
}

// shadowOpts are what shadowGatewayWith changes: the serving config, a
// blob store (review samples), the QA (default: pass images of the right
// size).
type shadowOpts struct {
	cfg   gateway.Config
	blobs gateway.BlobStore
	qa    gateway.QA
}

func shadowGatewayWith(t *testing.T, o shadowOpts, share, capUSD float64, runner gateway.ShadowRunner, strong *gatewaytest.Provider, policy ...gateway.Policy) (*gateway.Gateway, *gatewaytest.Producer) {
	t.Helper()
	if o.qa == nil {
		o.qa = &gatewaytest.Inspector{}
	}
	var pol gateway.Policy = &gatewaytest.Router{Model: "fast", Version: "p1"}
	if len(policy) > 0 {
		pol = policy[0]
	}
	s := experiments.Spec{
		ID: "shadow-strong", Name: "shadow", Owner: "t", Unit: experiments.UnitRequest, PrimaryMetric: "success_rate",
		Kind: experiments.KindShadow, Shadow: &experiments.Shadow{Share: share, DailyCapUSD: capUSD},
		Arms: []experiments.Arm{{Name: "live", Weight: 1}, {Name: "strong", Weight: 1, Overrides: experiments.Overrides{Model: "strong"}}},
	}
	a := runningAssigner(t, s)
	sink := gatewaytest.NewProducer(256)
	g := gateway.New(o.cfg, gateway.Deps{
		Blobs:  o.blobs,
		Policy: pol,
		Providers: map[string]providers.Provider{
			"fast":   &gatewaytest.Provider{Model: "fast", Color: color.NRGBA{200, 0, 0, 255}, CostUSD: 0.01},
			"strong": strong,
		},
		QA:       o.qa,
		Events:   sink,
		Assigner: gateway.NewExperimentAssigner(func() *experiments.Assigner { return a }, nil),
		Shadows:  runner,
	})
	return g, sink
}

// TestShadowMirrorsAfterLive: the live request is served as if in no
// experiment (its model, no arms, no shadow flag); its mirror, run after
// the live outcome, is served by the candidate and logged with shadow and
// the live request's id, QA included.
func TestShadowMirrorsAfterLive(t *testing.T) {
	q := &queued{}
	g, sink := shadowGateway(t, 1, 0, q, &gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}, CostUSD: 0.04})
	o, err := g.Serve(context.Background(), request("live-1", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Model != "fast" || len(o.Arms) != 0 {
		t.Errorf("live outcome: model %s arms %v, want fast and no arms", o.Model, o.Arms)
	}
	evs := sink.Events()
	if len(q.fs) != 1 {
		t.Fatalf("%d mirrors queued, want 1", len(q.fs))
	}
	for _, e := range evs {
		if d, ok := e.Value.(*events.Decision); ok && (d.Shadow || d.RequestID != "live-1") {
			t.Errorf("before the mirror ran: decision %+v", d)
		}
	}
	q.run()
	var dec *events.Decision
	var qaShadow int
	for _, e := range sink.Events()[len(evs):] {
		switch v := e.Value.(type) {
		case *events.Decision:
			dec = v
		case *events.QAResult:
			if v.Shadow && v.LiveRequestID == "live-1" {
				qaShadow++
			}
		}
	}
	if dec == nil || !dec.Shadow || dec.LiveRequestID != "live-1" || dec.Model != "strong" || dec.RequestID == "live-1" ||
		len(dec.Arms) != 1 || dec.Arms[0].Experiment != "shadow-strong" || dec.Arms[0].Arm != "strong" {
		t.Errorf("mirror decision = %+v, want shadow of live-1 served by strong in arm shadow-strong/strong", dec)
	}
	if qaShadow != 1 {
		t.Errorf("%d shadow QA events of live-1, want 1", qaShadow)
	}
}

// TestShadowPairsForReview: a mirror of a live request sampled for review
// stores its image too (with the live output's references), so the console
// pairs live and candidate; a mirror of an unsampled request stores nothing.
func TestShadowPairsForReview(t *testing.T) {
	for _, tc := range []struct {
		rate   float64
		stored bool
	}{{1, true}, {-1, false}} {
		store, err := blob.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		q := &queued{}
		g, sink := shadowGatewayWith(t, shadowOpts{cfg: gateway.Config{SampleRate: tc.rate}, blobs: store}, 1, 0, q,
			&gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}, CostUSD: 0.04})
		if _, err := g.Serve(context.Background(), request("live-1", "acme")); err != nil {
			t.Fatal(err)
		}
		q.run()
		var live, mirror *events.Decision
		for _, e := range sink.Events() {
			if d, ok := e.Value.(*events.Decision); ok && d.Shadow {
				mirror = d
			} else if ok {
				live = d
			}
		}
		if live == nil || mirror == nil {
			t.Fatalf("rate %g: live %v mirror %v, want both decisions", tc.rate, live, mirror)
		}
		if !tc.stored {
			if mirror.Sampled || mirror.BlobKey != "" {
				t.Errorf("unsampled live request: mirror stored its image (%+v)", mirror)
			}
			continue
		}
		if !live.Sampled || !mirror.Sampled || mirror.BlobKey == "" || mirror.BlobKey == live.BlobKey {
			t.Fatalf("sampled live request: live %q sampled %v, mirror %q sampled %v; want both stored, different images",
				live.BlobKey, live.Sampled, mirror.BlobKey, mirror.Sampled)
		}
		if b, err := store.Get(context.Background(), mirror.BlobKey); err != nil || len(b) == 0 {
			t.Errorf("mirror's image not in the store: %v", err)
		}
	}
}

// TestShadowServedAsIfLive: a candidate model whose image fails QA
// escalates on the mirror as it would if it were live (the live side
// escalates too, so the comparison is like for like); its first attempt
// is the candidate's.
func TestShadowServedAsIfLive(t *testing.T) {
	blue := color.NRGBA{0, 0, 200, 255}
	q := &queued{}
	inspect := &gatewaytest.Inspector{Fail: map[string]bool{gatewaytest.ColorKey(blue): true}}
	g, sink := shadowGatewayWith(t, shadowOpts{cfg: gateway.Config{SampleRate: -1}, qa: inspect}, 1, 0, q,
		&gatewaytest.Provider{Model: "strong", Color: blue, CostUSD: 0.04},
		&gatewaytest.Router{Model: "fast", Chain: []string{"fast"}, Version: "p1"})
	if _, err := g.Serve(context.Background(), request("live-1", "acme")); err != nil {
		t.Fatal(err)
	}
	q.run()
	var mirror *events.Decision
	for _, e := range sink.Events() {
		if d, ok := e.Value.(*events.Decision); ok && d.Shadow {
			mirror = d
		}
	}
	if mirror == nil || len(mirror.Attempts) != 2 || mirror.Attempts[0].Model != "strong" || mirror.Attempts[0].Status != "qa_fail" ||
		!mirror.Escalated || mirror.Model != "fast" || !mirror.QAPass {
		t.Fatalf("mirror = %+v, want strong failing QA, then escalated to fast", mirror)
	}
}

// TestShadowNeverDelaysLive: with the candidate blocked, live requests
// return at once; the mirror finishes once the candidate answers.
func TestShadowNeverDelaysLive(t *testing.T) {
	block := make(chan struct{})
	pool := gateway.NewShadowPool(1, 4)
	g, sink := shadowGateway(t, 1, 0, pool, &gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}, Block: block})
	for i := range 3 {
		if _, err := g.Serve(context.Background(), request(fmt.Sprintf("live-%d", i), "acme")); err != nil {
			t.Fatalf("Serve with the candidate blocked: %v", err)
		}
	}
	close(block)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shadows := 0
	for shadows < 3 {
		e, ok := sink.Next(ctx, events.TopicDecisions)
		if !ok {
			t.Fatalf("%d mirror decisions, want 3", shadows)
		}
		if e.Value.(*events.Decision).Shadow {
			shadows++
		}
	}
	pool.Close(ctx)
}

// TestShadowDailyCap: once the candidate's spend reaches the cap, no more
// mirrors that day.
func TestShadowDailyCap(t *testing.T) {
	q := &queued{}
	g, _ := shadowGateway(t, 1, 0.05, q, &gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}, CostUSD: 0.04})
	mirrored := 0
	for i := range 5 {
		if _, err := g.Serve(context.Background(), request(fmt.Sprintf("live-%d", i), "acme")); err != nil {
			t.Fatal(err)
		}
		mirrored += len(q.fs)
		q.run()
	}
	if mirrored != 2 { // 0.04 spent < 0.05: one more; 0.08 >= 0.05: none
		t.Errorf("%d mirrors under a 0.05 USD cap at 0.04 each, want 2", mirrored)
	}
}

// noPins is a policy under which no model can be pinned (as when the
// candidate cannot serve a request's mode, size or references).
type noPins struct{ gatewaytest.Router }

func (p *noPins) Decide(req router.Request) router.Decision {
	req.Pin = ""
	return p.Router.Decide(req)
}

// TestShadowSkipsIneligibleCandidate: a mirror whose candidate model cannot
// serve the request is not served by another model in the candidate's name.
func TestShadowSkipsIneligibleCandidate(t *testing.T) {
	q := &queued{}
	strong := &gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}}
	g, sink := shadowGateway(t, 1, 0, q, strong, &noPins{gatewaytest.Router{Model: "fast", Version: "p1"}})
	if _, err := g.Serve(context.Background(), request("live-x", "acme")); err != nil {
		t.Fatal(err)
	}
	n := len(sink.Events())
	q.run()
	if got := len(sink.Events()) - n; got != 0 || strong.Calls.Load() != 0 {
		t.Errorf("mirror with an ineligible candidate: %d events, %d candidate calls; want none", got, strong.Calls.Load())
	}
}

// TestShadowDailyCapHoldsQueuedMirrors: mirrors queued before any of them
// ran (a busy replica) still stop at the cap: the check is made again
// when each one is about to call the candidate.
func TestShadowDailyCapHoldsQueuedMirrors(t *testing.T) {
	q := &queued{}
	strong := &gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}, CostUSD: 0.04}
	g, _ := shadowGateway(t, 1, 0.05, q, strong)
	for i := range 5 {
		if _, err := g.Serve(context.Background(), request(fmt.Sprintf("live-%d", i), "acme")); err != nil {
			t.Fatal(err)
		}
	}
	q.run()
	if n := strong.Calls.Load(); n != 2 {
		t.Errorf("%d candidate calls from 5 queued mirrors under a 0.05 USD cap at 0.04 each, want 2", n)
	}
}
