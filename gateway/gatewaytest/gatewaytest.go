// Package gatewaytest holds test doubles for the gateway's dependencies:
// a provider that renders real PNGs, a fixed policy, a recording event sink
// and a scripted QA. Remote model APIs are the only thing the gateway's and
// the server's tests fake.
package gatewaytest

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"sync"
	"sync/atomic"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// Provider renders a uniform PNG of the requested size. Fail, when set, is
// asked before each call and its error returned. Calls counts calls.
type Provider struct {
	Model   string
	Color   color.NRGBA
	CostUSD float64
	Fail    func(req providers.Request) error
	Block   chan struct{} // when set, each call waits for a receive... or ctx
	Calls   atomic.Int64

	mu    sync.Mutex
	cache map[[2]int][]byte
}

var _ providers.Provider = (*Provider)(nil)

func (p *Provider) Name() string { return "fake-" + p.Model }

func (p *Provider) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	p.Calls.Add(1)
	if p.Block != nil {
		select {
		case <-p.Block:
		case <-ctx.Done():
			return providers.Result{}, &providers.Error{Provider: p.Name(), Kind: providers.KindTimeout, Message: ctx.Err().Error()}
		}
	}
	if p.Fail != nil {
		if err := p.Fail(req); err != nil {
			return providers.Result{}, err
		}
	}
	n := max(req.N, 1)
	res := providers.Result{CostUSD: p.CostUSD * float64(n)}
	b := p.render(req.Width, req.Height)
	for range n {
		res.Images = append(res.Images, providers.Image{Bytes: b, MIME: "image/png"})
	}
	return res, nil
}

func (p *Provider) render(w, h int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b, ok := p.cache[[2]int{w, h}]; ok {
		return b
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = p.Color.R, p.Color.G, p.Color.B, 255
	}
	var buf bytes.Buffer
	_ = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
	if p.cache == nil {
		p.cache = map[[2]int][]byte{}
	}
	p.cache[[2]int{w, h}] = buf.Bytes()
	return buf.Bytes()
}

// Router routes every request to Model then Chain, or to the pin.
type Router struct {
	Model        string
	Chain        []string
	Version      string
	EditDepthMax int
	Costs        map[string]float64             // list price per image, for candidates and the decision
	Seen         atomic.Pointer[router.Request] // last request decided
}

var _ gateway.Policy = (*Router)(nil)

func (r *Router) Decide(req router.Request) router.Decision {
	r.Seen.Store(&req)
	m := r.Model
	if req.Pin != "" {
		m = req.Pin
	}
	var cands []router.Candidate
	for _, name := range append([]string{m}, r.Chain...) {
		cands = append(cands, router.Candidate{Model: name, CostUSD: r.Costs[name], Eligible: true})
	}
	reset := r.EditDepthMax > 0 && req.Mode == router.ModeEdit && req.EditDepth >= r.EditDepthMax
	return router.Decision{
		Model: m, CostUSD: r.Costs[m], Fallbacks: r.Chain, PolicyVersion: r.Version, Propensity: 1, Reset: reset, EditDepth: 1, Candidates: cands,
		Features: router.Features{PromptLen: len(req.Prompt), RefCount: req.RefCount, EditDepth: req.EditDepth},
	}
}

// Event is one enqueued event.
type Event struct {
	Topic, Key string
	Value      any
}

// Producer records events; Next waits for the next one on a topic. Setting
// Full makes it backlogged (and not healthy), as a Kafka producer whose
// broker and spool take nothing.
type Producer struct {
	Full   atomic.Bool
	mu     sync.Mutex
	events []Event
	ch     chan Event
}

var (
	_ gateway.Sink    = (*Producer)(nil)
	_ gateway.Backlog = (*Producer)(nil)
)

// Backlogged reports Full.
func (p *Producer) Backlogged() bool { return p.Full.Load() }

// Healthy is an error while Full.
func (p *Producer) Healthy() error {
	if p.Full.Load() {
		return errors.New("event backlog full")
	}
	return nil
}

// NewProducer buffers up to n events for Next.
func NewProducer(n int) *Producer { return &Producer{ch: make(chan Event, n)} }

func (p *Producer) Enqueue(topic, key string, ev any) {
	p.mu.Lock()
	p.events = append(p.events, Event{topic, key, ev})
	p.mu.Unlock()
	select {
	case p.ch <- Event{topic, key, ev}:
	default:
	}
}

// Events returns a copy of everything enqueued so far.
func (p *Producer) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

// Next waits for the next enqueued event on topic.
func (p *Producer) Next(ctx context.Context, topic string) (Event, bool) {
	for {
		select {
		case e := <-p.ch:
			if e.Topic == topic {
				return e, true
			}
		case <-ctx.Done():
			return Event{}, false
		}
	}
}

// Inspector passes every image except those from models in Fail.
type Inspector struct {
	Fail  map[string]bool // by the image's color key, see Provider.Color
	Calls atomic.Int64
}

var _ gateway.QA = (*Inspector)(nil)

func (q *Inspector) Check(_ context.Context, im providers.Image, spec gateway.QASpec) qa.Result {
	q.Calls.Add(1)
	img := im.Bytes
	cfg, _, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return qa.Result{Pass: false, Score: 0, Reason: "undecodable", Checks: []events.QACheck{{Name: "format", Pass: false}}}
	}
	dec, _ := png.Decode(bytes.NewReader(img))
	r, g, b, _ := dec.At(0, 0).RGBA()
	key := color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}
	if q.Fail[hex(key)] {
		return qa.Result{Pass: false, Score: 0.2, Reason: "blank", Checks: []events.QACheck{{Name: "blank", Pass: false}}}
	}
	ok := cfg.Width == spec.Width && cfg.Height == spec.Height
	return qa.Result{Pass: ok, Score: 0.9, Checks: []events.QACheck{{Name: "size", Pass: ok}}}
}

// ColorKey is how Inspector.Fail names a provider's images.
func ColorKey(c color.NRGBA) string { return hex(c) }

func hex(c color.NRGBA) string {
	const d = "0123456789abcdef"
	return string([]byte{d[c.R>>4], d[c.R&15], d[c.G>>4], d[c.G&15], d[c.B>>4], d[c.B&15]})
}
