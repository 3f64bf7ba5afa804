// Package qa is routelab's automated QA of the image bytes a provider
// returned, run on the request path before the response (step 6 of the
// serving path): the server escalates to the next model when it fails, and
// emits the result as an events.QAResult. It is pure: bytes in, verdict out.
//
// Checks, in order (names as in events.QACheck):
//
//	format     the bytes are PNG, JPEG or WebP by their magic bytes, the header
//	           declares at most MaxPixels pixels (checked before decoding, against
//	           decompression bombs) and the body decodes. Value 1, or 0 on failure
//	           (nothing else runs then), or 0.5 when it is valid but not the format
//	           asked for: not a model failure, the server transcodes.
//	size       min(width/wantW, height/wantH): the image is at least the requested
//	           size, less SizeTolerance (a larger image can be downscaled).
//	aspect     |ln(aspect / wanted aspect)|, at most AspectTolerance.
//	blank      standard deviation of luma (0..255); below MinStdDev the image is
//	           blank or near-uniform.
//	sharpness  variance of the 4-neighbour Laplacian of luma; below MinSharpness
//	           the image is blurred or empty of detail. An edit is asked for no
//	           more detail than its reference has: its threshold is at most
//	           EditSharpness times the reference's (a smooth logo or gradient
//	           comes back smooth; that is not a blurred output).
//	drift      Hamming distance (0..64) between the pHash of the output and of the
//	           reference; only when the request asks to preserve the subject and a
//	           reference hash is given. Above MaxDrift the subject changed.
//	text       legibility, 1 - character error rate of what OCR read against the
//	           words the prompt asks to render; only for prompts with target text,
//	           through a TextChecker (text.go). Below the tier's threshold the
//	           reason is text_illegible.
//
// Statistics are measured on luma averaged down to at most WorkSide pixels on
// the longer side, so the thresholds mean the same at every output size.
package qa

import (
	"fmt"
	"hash/maphash"
	"image"
	"math"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/routelab/routelab/events"
)

// Check names.
const (
	CheckFormat    = "format"
	CheckSize      = "size"
	CheckAspect    = "aspect"
	CheckBlank     = "blank"
	CheckSharpness = "sharpness"
	CheckDrift     = "drift"
)

const defaultWorkSide = 512

// Thresholds tune the checks; zero fields take the defaults below.
type Thresholds struct {
	// MaxPixels refuses images whose header declares more pixels. Default
	// 40 Mpx (vendors return at most ~4 Mpx; 40 Mpx of RGBA is 160 MB).
	MaxPixels int
	// SizeTolerance is how much smaller than requested an image may be, as a
	// fraction. Default 0.02 (rounding to a multiple of 8 or 16 passes).
	SizeTolerance float64
	// AspectTolerance is the largest |ln(aspect/wanted)|. Default 0.03 (~3%).
	AspectTolerance float64
	// MinStdDev is the smallest luma standard deviation of a non-blank image.
	// Default 6: a solid fill with JPEG noise sits near 1-2; the sim's washed-out
	// renders near 3; a soft real photo above 20.
	MinStdDev float64
	// MinSharpness is the smallest Laplacian variance of a sharp image. Default
	// 30: a crisp render measures in the hundreds to thousands; a blur of
	// sigma ≈ 1 working pixel brings the simulator's renders under 25.
	MinSharpness float64
	// EditSharpness bounds an edit's sharpness threshold by this share of its
	// reference's Laplacian variance. Default 0.5: the simulator's edits of a
	// crisp reference keep most of its detail, blurred ones (q < 0.4) fall
	// under a third of it.
	EditSharpness float64
	// MaxDrift is the largest pHash distance at which the subject counts as
	// preserved. Default 16 of 64: re-encodes and mild edits stay under 10,
	// unrelated images sit near 32.
	MaxDrift int
	// WorkSide bounds the analysis plane. Default 512.
	WorkSide int
}

// DefaultThresholds returns the documented defaults.
func DefaultThresholds() Thresholds {
	return Thresholds{
		MaxPixels:       40_000_000,
		SizeTolerance:   0.02,
		AspectTolerance: 0.03,
		MinStdDev:       6,
		MinSharpness:    30,
		EditSharpness:   0.5,
		MaxDrift:        16,
		WorkSide:        defaultWorkSide,
	}
}

func (t Thresholds) withDefaults() Thresholds {
	d := DefaultThresholds()
	if t.MaxPixels == 0 {
		t.MaxPixels = d.MaxPixels
	}
	if t.SizeTolerance == 0 {
		t.SizeTolerance = d.SizeTolerance
	}
	if t.AspectTolerance == 0 {
		t.AspectTolerance = d.AspectTolerance
	}
	if t.MinStdDev == 0 {
		t.MinStdDev = d.MinStdDev
	}
	if t.MinSharpness == 0 {
		t.MinSharpness = d.MinSharpness
	}
	if t.EditSharpness == 0 {
		t.EditSharpness = d.EditSharpness
	}
	if t.MaxDrift == 0 {
		t.MaxDrift = d.MaxDrift
	}
	if t.WorkSide == 0 {
		t.WorkSide = d.WorkSide
	}
	return t
}

// Spec is what the request asked for.
type Spec struct {
	Width, Height int    // requested size; 0 skips the size and aspect checks
	Format        string // png | jpeg | webp asked for; another valid format passes with value 0.5 (transcode it)
	// Reference is the pHash of the image to preserve (HashBytes); the drift
	// check runs when PreserveSubject and HasReference are both set.
	Reference       Hash
	HasReference    bool
	PreserveSubject bool
	// IsEdit says the image is an edit of a reference whose Laplacian
	// variance is RefSharpness (Reference.Sharpness): the sharpness check
	// then asks for at most Thresholds.EditSharpness of it.
	IsEdit       bool
	RefSharpness float64
}

// Result is the verdict on one image.
type Result struct {
	Pass   bool
	Score  float64 // mean of per-check scores in [0,1]; 0 when the bytes do not decode
	Reason string  // the failed checks, "" when Pass
	Checks []events.QACheck
	Format string
	Width  int
	Height int
	Hash   Hash // pHash of the output, for drift checks on later edits in a chain
	// Sharpness is the output's Laplacian variance, for the sharpness check
	// of later edits in a chain.
	Sharpness float64
	// OCRText is what the legibility check read (AddText), "" without one.
	OCRText string
}

// Reference is what the checks need of an edit's reference image.
type Reference struct {
	Hash      Hash    // pHash, for the drift check
	Sharpness float64 // Laplacian variance on the work plane
}

// Event turns the result into the QA event the server emits.
func (r Result) Event(h events.Header, model string, attempt int) events.QAResult {
	return events.QAResult{Header: h, Model: model, Attempt: attempt, Pass: r.Pass, Score: r.Score, Checks: r.Checks, Reason: r.Reason, OCRText: r.OCRText}
}

// Checker runs the checks. It is safe for concurrent use.
type Checker struct {
	t     Thresholds
	bufs  sync.Pool // *[]uint8 work planes
	seed  maphash.Seed
	cache *lru.Cache[cacheKey, Result]
	refs  *lru.Cache[uint64, Reference] // references measured, by content
}

type cacheKey struct {
	sum  uint64
	size int
	spec Spec
}

// refHashes is how many reference hashes a Checker remembers, by content:
// 16 bytes of key and hash each, enough to span the minutes between one
// edit of a chain and the next under load.
const refHashes = 1 << 14

// New returns a Checker with t (zero fields take the defaults).
func New(t Thresholds) *Checker {
	refs, _ := lru.New[uint64, Reference](refHashes)
	return &Checker{t: t.withDefaults(), seed: maphash.MakeSeed(), refs: refs}
}

// HashReference returns the pHash of a reference image (for Spec.Reference).
// Errors as Decode.
func (c *Checker) HashReference(b []byte) (Hash, error) {
	r, err := c.Reference(b)
	return r.Hash, err
}

// Reference measures an edit's reference image, remembering the last
// refHashes by content: an edit chain sends the same reference with every
// attempt and every escalation, and the last output (which Check measured)
// as the next edit's reference. Errors as Decode.
func (c *Checker) Reference(b []byte) (Reference, error) {
	k := refKey(c.seed, b)
	if r, ok := c.refs.Get(k); ok {
		return r, nil
	}
	r, err := measureReference(b, c.t.MaxPixels)
	if err != nil {
		return Reference{}, err
	}
	c.refs.Add(k, r)
	return r, nil
}

// WithCache makes c remember the results for the last n distinct (bytes, spec)
// pairs, keyed by a 64-bit hash of the bytes and their length. Check is a pure
// function of both, so a hit returns what a fresh check would; it pays off when
// a provider returns identical bytes (the simulator's render cache, CDN'd
// images), and costs one pass of maphash over the bytes on a miss.
func (c *Checker) WithCache(n int) *Checker {
	cache, err := lru.New[cacheKey, Result](n)
	if err != nil {
		panic(fmt.Sprintf("qa: cache size %d: %v", n, err)) // n <= 0 is a programming error
	}
	c.cache = cache
	return c
}

// Thresholds returns the effective thresholds.
func (c *Checker) Thresholds() Thresholds { return c.t }

// Check runs every applicable check on b.
func (c *Checker) Check(b []byte, s Spec) Result { return c.CheckDecoded(b, nil, 0, s) }

// CheckDecoded is Check for bytes that come with what their provider knows
// of them (providers.Image). img, when not nil, is the image b encodes
// losslessly (a PNG drawn in this process): the format check still reads
// the bytes' header, which must declare img's size, and the pixel checks
// measure img instead of decoding the body again; bytes whose header
// disagrees with img, or that are not PNG, are decoded as Check does.
// digest, when not zero, is the provider's hash of b (providers.Image.Digest)
// and keys the result cache instead of hashing b. Results are cached as
// Check's.
func (c *Checker) CheckDecoded(b []byte, img image.Image, digest uint64, s Spec) Result {
	if c.cache == nil {
		return c.checkDecoded(b, img, s)
	}
	k := c.key(b, digest, s)
	if r, ok := c.cache.Get(k); ok {
		r.Checks = append([]events.QACheck(nil), r.Checks...) // callers may modify theirs
		return r
	}
	r := c.checkDecoded(b, img, s)
	c.cache.Add(k, r)
	r.Checks = append([]events.QACheck(nil), r.Checks...)
	return r
}

// key is the result cache's key: the provider's digest of b when it gave
// one, else a hash of b. The two cannot be told apart, which is fine: a
// collision between 64-bit hashes of different bytes of the same length is
// as unlikely as one between two maphash sums.
func (c *Checker) key(b []byte, digest uint64, s Spec) cacheKey {
	if digest == 0 {
		digest = maphash.Bytes(c.seed, b)
	}
	return cacheKey{sum: digest, size: len(b), spec: s}
}

func (c *Checker) checkDecoded(b []byte, img image.Image, s Spec) Result {
	if img == nil {
		return c.check(b, s)
	}
	cfg, format, err := DecodeConfig(b, c.t.MaxPixels)
	if err != nil || format != FormatPNG || cfg.Width != img.Bounds().Dx() || cfg.Height != img.Bounds().Dy() {
		return c.check(b, s)
	}
	r := c.CheckImage(img, format, s)
	c.rememberReference(b, r)
	return r
}

func (c *Checker) check(b []byte, s Spec) Result {
	if format := Sniff(b); format == FormatPNG || format == FormatJPEG {
		bufp := c.buf()
		if g, w, h, ok := streamWork(b, format, c.t.MaxPixels, c.t.WorkSide, *bufp); ok {
			r := c.checkPlane(g, w, h, format, s)
			*bufp = g.pix
			c.bufs.Put(bufp)
			c.rememberReference(b, r)
			return r
		}
		c.bufs.Put(bufp)
	}
	img, format, err := Decode(b, c.t.MaxPixels)
	if err != nil {
		return Result{
			Format: format,
			Checks: []events.QACheck{{Name: CheckFormat, Pass: false, Value: 0}},
			Reason: "format: " + err.Error(),
		}
	}
	r := c.CheckImage(img, format, s)
	c.rememberReference(b, r)
	return r
}

// rememberReference files the measures of bytes that were just checked as their
// reference hash: an edit chain sends an output back as the next edit's
// reference, and HashReference then finds it instead of decoding the bytes
// again. Only at the default work side, where the two hashes are the same.
func (c *Checker) rememberReference(b []byte, r Result) {
	if c.t.WorkSide == defaultWorkSide {
		c.refs.Add(refKey(c.seed, b), Reference{Hash: r.Hash, Sharpness: r.Sharpness})
	}
}

func refKey(seed maphash.Seed, b []byte) uint64 { return maphash.Bytes(seed, b) ^ uint64(len(b)) }

// CheckRef is Check with the reference as image bytes: it is hashed once
// (HashReference) and the drift check runs when preserve is set. A reference
// that does not decode skips the drift check (the request's validation
// rejects such references before a model is called).
func (c *Checker) CheckRef(b, ref []byte, preserve bool, s Spec) Result {
	if preserve && len(ref) > 0 {
		if h, err := c.HashReference(ref); err == nil {
			s.Reference, s.HasReference, s.PreserveSubject = h, true, true
		}
	}
	return c.Check(b, s)
}

// CheckImage runs the checks on an already decoded image (format as named by Sniff).
func (c *Checker) CheckImage(img image.Image, format string, s Spec) Result {
	bufp := c.buf()
	g := toWork(img, c.t.WorkSide, *bufp)
	r := c.checkPlane(g, img.Bounds().Dx(), img.Bounds().Dy(), format, s)
	*bufp = g.pix
	c.bufs.Put(bufp)
	return r
}

// buf takes a work plane buffer from the pool.
func (c *Checker) buf() *[]uint8 {
	bufp, _ := c.bufs.Get().(*[]uint8)
	if bufp == nil {
		bufp = new([]uint8)
	}
	return bufp
}

// checkPlane runs the checks on a w×h image of the format, whose luma work
// plane is g (toWork, or streamWork straight from PNG or JPEG bytes).
func (c *Checker) checkPlane(g gray, w, h int, format string, s Spec) Result {
	r := Result{Format: format, Width: w, Height: h, Checks: make([]events.QACheck, 0, 6)}
	var scores []float64
	var reasons []string
	add := func(name string, pass bool, value, score float64, why string) {
		r.Checks = append(r.Checks, events.QACheck{Name: name, Pass: pass, Value: value})
		scores = append(scores, clamp01(score))
		if !pass {
			reasons = append(reasons, name+": "+why)
		}
	}

	// A valid image in another format than asked is not a model failure (the
	// server transcodes), so it passes with value 0.5 rather than escalating.
	formatValue := 1.0
	if s.Format != "" && !strings.EqualFold(s.Format, format) && (s.Format != "jpg" || format != FormatJPEG) {
		formatValue = 0.5
	}
	add(CheckFormat, true, formatValue, formatValue, "")

	if s.Width > 0 && s.Height > 0 {
		ratio := math.Min(float64(r.Width)/float64(s.Width), float64(r.Height)/float64(s.Height))
		add(CheckSize, ratio >= 1-c.t.SizeTolerance, ratio, ratio,
			fmt.Sprintf("%dx%d smaller than %dx%d", r.Width, r.Height, s.Width, s.Height))
		dev := math.Abs(math.Log(float64(r.Width) / float64(r.Height) * float64(s.Height) / float64(s.Width)))
		add(CheckAspect, dev <= c.t.AspectTolerance, dev, 1-dev/(4*c.t.AspectTolerance),
			fmt.Sprintf("%dx%d is not the aspect of %dx%d", r.Width, r.Height, s.Width, s.Height))
	}

	std, lap := stats(g)
	r.Hash, r.Sharpness = phash(g), lap

	add(CheckBlank, std >= c.t.MinStdDev, round3(std), std/(2*c.t.MinStdDev),
		fmt.Sprintf("luma std-dev %.1f < %.1f", std, c.t.MinStdDev))
	minSharp := c.t.MinSharpness
	if s.IsEdit {
		minSharp = min(minSharp, c.t.EditSharpness*s.RefSharpness)
	}
	sharpScore := 1.0
	if minSharp > 0 {
		sharpScore = lap / (2 * minSharp)
	}
	add(CheckSharpness, lap >= minSharp, round3(lap), sharpScore,
		fmt.Sprintf("Laplacian variance %.1f < %.1f", lap, minSharp))

	if s.PreserveSubject && s.HasReference {
		d := r.Hash.Distance(s.Reference)
		add(CheckDrift, d <= c.t.MaxDrift, float64(d), 1-float64(d)/float64(2*c.t.MaxDrift),
			fmt.Sprintf("pHash distance %d > %d", d, c.t.MaxDrift))
	}

	var sum float64
	for _, v := range scores {
		sum += v
	}
	r.Score = round3(sum / float64(len(scores)))
	r.Pass = len(reasons) == 0
	r.Reason = strings.Join(reasons, "; ")
	return r
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
