package qa

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"image"
	"image/png"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/routelab/routelab/events"
)

// Legibility QA: for a request whose prompt asks for words in the image
// (router.TargetTexts), an OCR engine reads the output and the check scores
// 1 - character error rate against the words asked for. Lettering is where
// models differ most, and the other checks pass a crisp poster whose text is
// garbled.

// CheckText is the legibility check's name; its value is the score.
const CheckText = "text"

// ReasonTextIllegible starts the reason of a failed legibility check.
const ReasonTextIllegible = "text_illegible"

// OCR reads the text in an image (PNG, JPEG or WebP bytes). Read returns an
// error when the engine fails or ctx ends first.
type OCR interface {
	Read(ctx context.Context, img []byte) (string, error)
}

// ErrNoReadableText is returned by TextChecker.Check when the target text
// has no word in the Latin script or digits: the English data Tesseract
// reads with cannot judge it, and "illegible" would be a lie.
var ErrNoReadableText = errors.New("no target text in a script OCR reads")

// TextThresholds are the smallest legibility scores that pass, per tier,
// and the time one check may take.
type TextThresholds struct {
	Draft, Standard, Premium float64
	// Timeout bounds one check, waiting for an OCR slot included: a check
	// that runs out passes unjudged rather than hold the request.
	Timeout time.Duration
}

// DefaultTextThresholds: one character in four wrong still passes a draft,
// one in five a standard image, one in ten a premium one. Tesseract reads
// clean rendered lettering at 0.95-1; a generalist's garbled lettering, with
// letters dropped and swapped, scores under 0.7.
func DefaultTextThresholds() TextThresholds {
	return TextThresholds{Draft: 0.75, Standard: 0.8, Premium: 0.9, Timeout: 5 * time.Second}
}

// Min is the threshold for a tier (router.Tier names; standard when empty
// or unknown).
func (t TextThresholds) Min(tier string) float64 {
	switch tier {
	case "draft":
		return t.Draft
	case "premium":
		return t.Premium
	}
	return t.Standard
}

// TextResult is the verdict of the legibility check.
type TextResult struct {
	Pass   bool
	Score  float64 // 1 - CER, in [0,1]
	Read   string  // what OCR read, whitespace collapsed
	Reason string  // "" when Pass
}

// TextChecker runs the legibility check through an OCR engine, remembering
// what it read in recent images. It is safe for concurrent use.
type TextChecker struct {
	ocr  OCR
	t    TextThresholds
	seed maphash.Seed
	// cache holds what OCR read, by image digest: the reading is the
	// expensive part and depends on the image alone; the score against
	// the words asked for and the tier's threshold are cheap to redo.
	cache                 *lru.Cache[uint64, string]
	checks, reads, errors atomic.Int64
}

// TextStats counts a TextChecker's work.
type TextStats struct {
	Checks int64 `json:"checks"` // checks of target text OCR can read
	Reads  int64 `json:"reads"`  // of them, images OCR read (the others' readings were cached)
	Errors int64 `json:"errors"` // reads that failed or ran out of time: no verdict
}

// defaultTextCache is the number of readings NewTextChecker remembers.
const defaultTextCache = 1024

// NewTextChecker returns a checker reading with o; zero thresholds take
// the defaults.
func NewTextChecker(o OCR, t TextThresholds) *TextChecker {
	d := DefaultTextThresholds()
	if t.Draft == 0 {
		t.Draft = d.Draft
	}
	if t.Standard == 0 {
		t.Standard = d.Standard
	}
	if t.Premium == 0 {
		t.Premium = d.Premium
	}
	if t.Timeout == 0 {
		t.Timeout = d.Timeout
	}
	cache, _ := lru.New[uint64, string](defaultTextCache)
	return &TextChecker{ocr: o, t: t, seed: maphash.MakeSeed(), cache: cache}
}

// WithCache makes c remember the readings of the last n images (n > 0)
// instead of 1024, and returns c. Call it before the first Check.
func (c *TextChecker) WithCache(n int) *TextChecker {
	if cache, err := lru.New[uint64, string](n); err == nil {
		c.cache = cache
	}
	return c
}

// Stats returns the counts of checks, OCR reads and OCR errors so far.
func (c *TextChecker) Stats() TextStats {
	return TextStats{Checks: c.checks.Load(), Reads: c.reads.Load(), Errors: c.errors.Load()}
}

// Thresholds returns the effective thresholds.
func (c *TextChecker) Thresholds() TextThresholds { return c.t }

// Check reads b (or img, when it is a pixel-repeated render: the small
// picture is read instead, the same text at a fraction of the cost) and
// scores it against want at tier's threshold. digest, when not zero, keys
// the cache of readings instead of a hash of b. It returns an error, and no
// verdict, when OCR fails or the time limit passes.
func (c *TextChecker) Check(ctx context.Context, b []byte, img image.Image, digest uint64, want []string, tier string) (TextResult, error) {
	want = readable(want)
	if len(want) == 0 {
		return TextResult{}, ErrNoReadableText
	}
	if digest == 0 {
		digest = maphash.Bytes(c.seed, b) ^ uint64(len(b))
	}
	c.checks.Add(1)
	read, ok := c.cache.Get(digest)
	if !ok {
		var err error
		if read, err = c.read(ctx, b, img); err != nil {
			c.errors.Add(1)
			return TextResult{}, err
		}
		c.cache.Add(digest, read)
	}
	r := TextResult{Read: read, Score: round3(Legibility(read, want))}
	min := c.t.Min(tier)
	r.Pass = r.Score >= min
	if !r.Pass {
		r.Reason = fmt.Sprintf("%s: OCR read %q for %q, legibility %.2f < %.2f", ReasonTextIllegible, clip(r.Read, 60), strings.Join(want, " / "), r.Score, min)
	}
	return r, nil
}

// read returns what OCR reads in the image, whitespace collapsed.
func (c *TextChecker) read(ctx context.Context, b []byte, img image.Image) (string, error) {
	c.reads.Add(1)
	if rep, ok := img.(PixelRepeated); ok {
		small, _ := rep.Repeated()
		var buf bytes.Buffer
		if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, small); err == nil {
			b = buf.Bytes()
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.t.Timeout)
	defer cancel()
	read, err := c.ocr.Read(ctx, b)
	if err != nil {
		return "", fmt.Errorf("ocr: %w", err)
	}
	return strings.Join(strings.Fields(read), " "), nil
}

// readable keeps the words of want written in Latin letters and digits.
func readable(want []string) []string {
	var out []string
	for _, s := range want {
		var words []string
		for _, w := range strings.Fields(s) {
			ok, letters := true, 0
			for _, r := range w {
				if unicode.IsLetter(r) || unicode.IsDigit(r) {
					letters++
					ok = ok && (r < 0x80 || unicode.Is(unicode.Latin, r))
				}
			}
			if ok && letters > 0 {
				words = append(words, w)
			}
		}
		if len(words) > 0 {
			out = append(out, strings.Join(words, " "))
		}
	}
	return out
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// AddText adds the legibility verdict to r: its check, its score to the
// mean, its reason, and what OCR read.
func (r *Result) AddText(t TextResult) {
	n := float64(len(r.Checks))
	r.Checks = append(r.Checks, events.QACheck{Name: CheckText, Pass: t.Pass, Value: t.Score})
	r.Score = round3((r.Score*n + t.Score) / (n + 1))
	r.OCRText = t.Read
	if t.Pass {
		return
	}
	if r.Pass || r.Reason == "" {
		r.Reason = t.Reason
	} else {
		r.Reason += "; " + t.Reason
	}
	r.Pass = false
}

// Legibility is 1 - the character error rate of read against want: every
// word of want is matched to the closest word OCR read, or pair of adjacent
// words (a word split in two), so that the words may come in any order,
// across lines, among other marks, while a letter too many or too few in a
// word still counts. Edit distances are summed over the characters of want.
// Both sides are normalised first: upper case, letters and digits only.
// Without letters or digits to match, want is legible.
func Legibility(read string, want []string) float64 {
	toks := strings.Fields(string(normalize(read, true)))
	cands := make([][]rune, 0, 2*len(toks))
	for i, t := range toks {
		cands = append(cands, []rune(t))
		if i+1 < len(toks) {
			cands = append(cands, []rune(t+toks[i+1]))
		}
	}
	var dist, total int
	for _, s := range want {
		for _, w := range strings.Fields(string(normalize(s, true))) {
			rw := []rune(w)
			total += len(rw)
			best := len(rw)
			for _, c := range cands {
				best = min(best, editDistance(rw, c))
			}
			dist += best
		}
	}
	if total == 0 {
		return 1
	}
	return max(0, 1-float64(dist)/float64(total))
}

// normalize upper-cases s and keeps letters and digits; with spaces, any
// other run but apostrophes becomes one space.
func normalize(s string, spaces bool) []rune {
	out := make([]rune, 0, len(s))
	gap := false
	for _, r := range s {
		if r == '\'' || r == '’' {
			continue // an apostrophe joins: DON'T reads as DONT
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if gap && spaces && len(out) > 0 {
				out = append(out, ' ')
			}
			gap = false
			out = append(out, unicode.ToUpper(r))
			continue
		}
		gap = true
	}
	return out
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j-1]+cost, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
