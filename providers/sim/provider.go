package sim

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/maphash"
	"image"
	"math"
	"time"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/internal/upstream"
)

// Oracle decides the outcome of a call: the hidden truth the provider acts
// out. budget is how long the caller will wait, in simulated time (0: no
// deadline); a model slower than that times out. WorldOracle adapts the
// World; tests use an OracleFunc.
type Oracle interface {
	Outcome(ctx context.Context, req providers.Request, budget time.Duration) Outcome
}

// OracleFunc adapts a function to Oracle.
type OracleFunc func(ctx context.Context, req providers.Request, budget time.Duration) Outcome

// Outcome calls f.
func (f OracleFunc) Outcome(ctx context.Context, req providers.Request, budget time.Duration) Outcome {
	return f(ctx, req, budget)
}

// Caller is what WorldOracle needs of a world: *World, or a wrapper that
// changes it (a scenario's slowdown or quality drop).
type Caller interface {
	Call(c Call) Outcome
}

// WorldOracle asks w about each call: the budget becomes the call's
// deadline, the request's quality tier the price tier, and its attempt
// number makes each retry a fresh draw.
func WorldOracle(w Caller) Oracle {
	return OracleFunc(func(_ context.Context, req providers.Request, budget time.Duration) Outcome {
		c := Call{
			RequestID: req.RequestID,
			Model:     req.Model,
			Mode:      req.Mode,
			Prompt:    req.Prompt,
			RefCount:  len(req.References),
			EditDepth: req.EditDepth,
			Attempt:   req.Attempt,
			Width:     req.Width,
			Height:    req.Height,
			Tier:      req.Quality,
		}
		if budget > 0 {
			c.DeadlineMS = max(budget.Milliseconds(), 1)
		}
		return w.Call(c)
	})
}

// Options tune the simulated provider; zero fields take the defaults.
type Options struct {
	// Name is the provider name in errors and attempts. Default "sim".
	Name string
	// LatencyScale multiplies the outcome's latency before waiting: 1 waits
	// in real time, 0.01 makes a 12 s model answer in 120 ms, 0 does not wait
	// (benchmarks). The wait respects the context.
	LatencyScale float64
	// Width and Height are used when the request has no size. Default 256×256,
	// small so that zero-latency benchmarks measure routelab, not the renderer.
	Width, Height int
	// CacheBytes bounds the rendered images kept, keyed by everything the
	// rendering depends on (see renderKey), counting each with its base64.
	// Default 64 MiB (a 1024 px render is 50-300 kB, a 256 px one 15-50 kB);
	// negative disables the cache.
	CacheBytes int64
	// RefCacheBytes bounds the decoded edit references kept, by content:
	// the pixels of fresh renders, which a chain's next edit sends back,
	// and decoded client references. Default 32 MiB (a 1024 px output is
	// drawn at 512 px, 1 MiB of pixels; a decoded 1024 px reference is 4
	// MiB). A lab, serving a long workload whose chains interleave, keeps
	// more: every miss decodes a megapixel PNG.
	RefCacheBytes int64
	// Variants is how many different pictures one (model, prompt, quality)
	// can come out as: the request's seed picks one. Default 4. Few variants
	// keep the render cache hot under replayed load; the picture still varies
	// between requests and between the images of one call.
	Variants int
	// RetryAfter is returned with rate-limited outcomes. Default 1 s.
	RetryAfter time.Duration
	// Sleep waits d or until ctx is done; tests inject one. Default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock the deadline is read against. Default time.Now.
	Now func() time.Time
}

// Provider acts out an Oracle's outcomes as an image API would: it waits the
// model's latency, then returns rendered PNG bytes or a *providers.Error.
type Provider struct {
	oracle Oracle
	opt    Options
	seed   maphash.Seed
	images *sizedCache[renderKey, rendered]
	refs   *sizedCache[uint64, image.Image] // decoded references, by content
}

var _ providers.Provider = (*Provider)(nil)

type renderKey struct {
	prompt   string
	w, h     int
	qualityQ int // renderQuality(quality) in steps of 1/qualitySteps
	seed     uint64
	ref      uint64 // hash of the reference for edits, 0 for generation
	jpeg     bool   // encoded as JPEG (output_format jpeg); PNG otherwise
}

// qualitySteps quantises quality so that renders can be cached; Render of the
// quantised quality is what a cache hit returns.
const qualitySteps = 20

// renderQuality is the quality Render is called with: quantised down to
// 0.05, and 1 from 0.8 up, where Render draws the same picture. Down, never
// to the nearest step: a failure just under SuccessQuality rounded up to it
// would be drawn as a success, its lettering intact for OCR QA to pass.
// RenderOutput is the image the simulated provider returns for model's
// generation of prompt at the drawn quality (its first variant), with the
// image it encodes losslessly, so QA can check it without decoding: what
// the lab's and the evaluation's OCR read is what serve would have served.
func RenderOutput(model, prompt string, w, h int, quality float64) ([]byte, image.Image) {
	c := renderCanvas(nil, prompt, w, h, float64(renderQuality(quality))/qualitySteps, hashString(model+"\x00"+prompt))
	return encode(c), c.image()
}

func renderQuality(q float64) int {
	if q >= 0.8 {
		return qualitySteps
	}
	n := int(math.Floor(clamp01(q) * qualitySteps))
	if success := int(math.Round(SuccessQuality * qualitySteps)); q < SuccessQuality {
		n = min(n, success-1)
	} else {
		n = max(n, success) // 0.7*20 is 13.999... in floating point
	}
	return n
}

const maxCacheEntries = 1 << 14

// New returns a simulated provider acting out o's outcomes.
func New(o Oracle, opt Options) *Provider {
	if opt.Name == "" {
		opt.Name = "sim"
	}
	if opt.Width <= 0 || opt.Height <= 0 {
		opt.Width, opt.Height = 256, 256
	}
	if opt.CacheBytes == 0 {
		opt.CacheBytes = 64 << 20
	}
	if opt.RefCacheBytes == 0 {
		opt.RefCacheBytes = 32 << 20
	}
	if opt.Variants <= 0 {
		opt.Variants = 4
	}
	if opt.RetryAfter == 0 {
		opt.RetryAfter = time.Second
	}
	if opt.Sleep == nil {
		opt.Sleep = upstream.Sleep
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	p := &Provider{oracle: o, opt: opt, seed: maphash.MakeSeed()}
	if opt.CacheBytes > 0 {
		p.images = newSizedCache[renderKey](maxCacheEntries, opt.CacheBytes, rendered.size)
		p.refs = newSizedCache[uint64](maxCacheEntries, opt.RefCacheBytes, pixelBytes)
	}
	return p
}

// Name returns the provider name.
func (p *Provider) Name() string { return p.opt.Name }

// Generate asks the oracle for the outcome, waits its latency (scaled), and
// returns the rendered images, or a *providers.Error of the outcome's kind
// (KindTimeout when ctx ends first, KindBadRequest when an edit's reference
// does not decode). Images are PNG, or JPEG when req.OutputFormat asks for it
// (there is no WebP encoder: WebP requests get PNG, which QA passes with a
// format value of 0.5 for the server to transcode). Returned bytes may be
// shared with later calls: read only.
func (p *Provider) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	v := p.oracle.Outcome(ctx, req, p.budget(ctx))
	wait := time.Duration(float64(v.Latency) * p.opt.LatencyScale)
	if v.ErrKind == providers.KindRateLimited || v.ErrKind == providers.KindAuth || v.ErrKind == providers.KindBadRequest {
		wait /= 20 // refused at the door, before any model runs
	}
	if err := p.opt.Sleep(ctx, wait); err != nil {
		return providers.Result{}, &providers.Error{Provider: p.opt.Name, Kind: providers.KindTimeout, Status: 504, Message: err.Error()}
	}
	if v.ErrKind != "" {
		e := &providers.Error{Provider: p.opt.Name, Kind: v.ErrKind, Status: statusOf(v.ErrKind), Message: "simulated " + string(v.ErrKind)}
		if v.ErrKind == providers.KindContentPolicy {
			e.Reason = "simulated_refusal"
		}
		if v.ErrKind == providers.KindRateLimited {
			e.RetryAfter = p.opt.RetryAfter
		}
		return providers.Result{}, e
	}
	w, h := req.Width, req.Height
	if w <= 0 || h <= 0 {
		w, h = p.opt.Width, p.opt.Height
	}
	seed := hashString(req.Model + "\x00" + req.Prompt)
	var ref image.Image
	var refKey uint64
	if req.Mode == "edit" && len(req.References) > 0 {
		var err error
		if ref, refKey, err = p.reference(req.References[0]); err != nil {
			return providers.Result{}, &providers.Error{Provider: p.opt.Name, Kind: providers.KindBadRequest, Status: 400, Message: err.Error()}
		}
	}
	n := max(req.N, 1)
	res := providers.Result{Images: make([]providers.Image, n), CostUSD: v.CostUSD, Latency: v.Latency}
	for i := range n {
		variant := (req.Seed + uint64(i)) % uint64(p.opt.Variants)
		k := renderKey{prompt: req.Prompt, w: w, h: h, qualityQ: renderQuality(v.Quality), seed: seed + variant, ref: refKey,
			jpeg: req.OutputFormat == "jpeg" || req.OutputFormat == "jpg"}
		mime := "image/png"
		if k.jpeg {
			mime = "image/jpeg"
		}
		r, decoded := p.render(k, ref)
		res.Images[i] = providers.Image{Bytes: r.b, MIME: mime, Decoded: decoded, Digest: r.digest, Base64: r.b64}
	}
	return res, nil
}

// budget converts the time left before ctx's deadline into simulated time:
// with LatencyScale 0.01 a 5 s deadline lets a model take 500 s. With
// LatencyScale 0 (no waiting) the deadline is taken as simulated time, so
// latency constraints still bite in zero-latency runs.
func (p *Provider) budget(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	left := max(dl.Sub(p.opt.Now()), time.Millisecond)
	if p.opt.LatencyScale > 0 {
		return time.Duration(float64(left) / p.opt.LatencyScale)
	}
	return left
}

// rendered is an encoded render with its digest (providers.Image.Digest)
// and its base64 (providers.Image.Base64, the form a vendor's JSON answer
// carries), both made once when it is drawn.
type rendered struct {
	b      []byte
	digest uint64
	b64    string
}

func (r rendered) size() int64 { return int64(len(r.b) + len(r.b64)) }

// render returns the bytes for k, from the cache or freshly drawn; a fresh
// PNG also comes with the image it encodes (losslessly), for QA to measure
// without decoding the bytes again.
func (p *Provider) render(k renderKey, ref image.Image) (rendered, image.Image) {
	if p.images != nil {
		if r, ok := p.images.Get(k); ok {
			return r, nil
		}
	}
	q := float64(k.qualityQ) / qualitySteps
	c := renderCanvas(ref, k.prompt, k.w, k.h, q, k.seed)
	var b []byte
	var decoded image.Image
	if k.jpeg {
		b = encodeJPEG(c) // lossy: QA must decode what the client gets
	} else {
		b, decoded = encode(c), c.image()
	}
	r := rendered{b: b, digest: maphash.Bytes(p.seed, b), b64: base64.StdEncoding.EncodeToString(b)}
	if p.refs != nil && decoded != nil {
		// The next edit of a chain sends this output back as its reference:
		// keep its pixels under the key reference() looks up, instead of
		// decoding a megapixel PNG again (a quarter of a lab request's CPU).
		p.refs.Add(r.digest|1, decoded)
	}
	if p.images != nil {
		p.images.Add(k, r) // renders are deterministic: another call's is the same
	}
	return r, decoded
}

// reference decodes an edit's reference (at most 40 Mpx), cached by content.
func (p *Provider) reference(b []byte) (image.Image, uint64, error) {
	key := maphash.Bytes(p.seed, b) | 1 // as render keys its outputs
	if p.refs != nil {
		if img, ok := p.refs.Get(key); ok {
			return img, key, nil
		}
	}
	img, _, err := qa.Decode(b, 40_000_000)
	if err != nil {
		return nil, 0, fmt.Errorf("reference image: %w", err)
	}
	if p.refs != nil {
		p.refs.Add(key, img)
	}
	return img, key, nil
}

func statusOf(k providers.ErrorKind) int {
	switch k {
	case providers.KindRateLimited:
		return 429
	case providers.KindTimeout:
		return 504
	case providers.KindContentPolicy, providers.KindBadRequest:
		return 400
	case providers.KindAuth:
		return 401
	}
	return 503
}
