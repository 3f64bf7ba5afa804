package router

import "strings"

// Feature layout. Every feature is binary (present or not), so a request's
// feature vector is a short list of active indices: the classifier score is a
// sum of weights, and a million training rows fit in a few dozen megabytes.
const (
	fBias = iota
	fEdit
	fRef0
	fRef1
	fRef2
	fRef3p
	fLen0 // prompt words: <5
	fLen1 // 5-12
	fLen2 // 13-25
	fLen3 // 26-50
	fLen4 // >50
	fQuotedShort
	fQuotedLong
	fKW // first keyword group; numKW follow
)

// Keyword groups: words and two-word phrases a request's prompt may contain.
const (
	KWText = iota
	KWLayout
	KWPhoto
	KWPortrait
	KWAbstract
	KWEditVerb
	KWPreserve
	KWStyle
	KWProduct
	KWScene
	numKW
)

// KeywordNames names the keyword groups in the order of their bits.
var KeywordNames = [numKW]string{"text", "layout", "photo", "portrait", "abstract", "edit_verb", "preserve", "style", "product", "scene"}

const (
	fDepth0 = fKW + numKW + iota // edit depth buckets: 0,1,2,3-4,5-6,7-8,9-10,11+
	fDepth1
	fDepth2
	fDepth3
	fDepth5
	fDepth7
	fDepth9
	fDepth11
	fAspSquare
	fAspLandscape
	fAspPortrait
	fLarge // more than 2.5 megapixels
	fTierDraft
	fTierStandard
	fTierPremium
	fTextHeavy
	fPreserve
	fMaxLatency
	fMaxCost
	numBase
)

// GramBuckets is the number of hashed word uni- and bigram features.
const GramBuckets = 1024

// Dim is the length of a model's weight vector.
const Dim = numBase + GramBuckets

// maxActive bounds the active features of one request (long prompts keep
// their first n-grams only).
const maxActive = 112

// Features are extracted once per request. They are a fixed-size value: no
// allocation on the hot path.
type Features struct {
	Idx [maxActive]uint16 // active feature indices; the first N are valid
	N   int

	PromptLen int     // characters
	Words     int     // words
	RefCount  int     // reference images
	EditDepth int     // depth the features were computed for
	Aspect    float64 // width/height, 1 when unknown
	Keywords  uint16  // bit k set when keyword group k matched
	Quoted    int     // words of target text (the name predates unquoted targets)

	// Target text: the strings the prompt asks the image to show (target.go).
	Targets     [MaxTargets]Span // the first NTargets are valid
	NTargets    int
	TargetRunes int   // characters of all targets, spaces included
	TargetChars uint8 // Char* classes present in the targets
}

// Active returns the active feature indices.
func (f *Features) Active() []uint16 { return f.Idx[:f.N] }

// Has reports whether keyword group k matched.
func (f *Features) Has(k int) bool { return f.Keywords&(1<<k) != 0 }

// KeywordList names the matched keyword groups (allocates; for logging).
func (f *Features) KeywordList() []string {
	var out []string
	for k := 0; k < numKW; k++ {
		if f.Has(k) {
			out = append(out, KeywordNames[k])
		}
	}
	return out
}

// addGram adds a hashed n-gram while leaving room for the features added
// after the prompt scan.
func (f *Features) addGram(h uint64) {
	if f.N < maxActive-gramReserve {
		f.Idx[f.N] = uint16(numBase + int(h%GramBuckets))
		f.N++
	}
}

const gramReserve = 2 + numKW

func (f *Features) add(i int) {
	if f.N < maxActive {
		f.Idx[f.N] = uint16(i)
		f.N++
	}
}

// keywords maps lower-case words and two-word phrases to keyword groups.
// Read-only after package initialisation.
var keywords = map[string]uint16{
	"text": 1 << KWText, "says": 1 << KWText, "saying": 1 << KWText, "written": 1 << KWText, "word": 1 << KWText,
	"words": 1 << KWText, "letters": 1 << KWText, "lettering": 1 << KWText, "sign": 1 << KWText, "poster": 1 << KWText,
	"banner": 1 << KWText, "logo": 1 << KWText, "headline": 1 << KWText, "typography": 1 << KWText, "label": 1 << KWText,
	"caption": 1 << KWText, "title": 1 << KWText, "slogan": 1 << KWText, "reads": 1 << KWText, "neon": 1 << KWText,
	"menu": 1 << KWLayout, "infographic": 1 << KWLayout, "diagram": 1 << KWLayout, "chart": 1 << KWLayout,
	"layout": 1 << KWLayout, "brochure": 1 << KWLayout, "flyer": 1 << KWLayout, "page": 1 << KWLayout,
	"columns": 1 << KWLayout, "listing": 1 << KWLayout, "table": 1 << KWLayout, "slide": 1 << KWLayout,
	"photo": 1 << KWPhoto, "photograph": 1 << KWPhoto, "photo of": 1 << KWPhoto, "photorealistic": 1 << KWPhoto,
	"realistic": 1 << KWPhoto, "dslr": 1 << KWPhoto, "35mm": 1 << KWPhoto, "85mm": 1 << KWPhoto, "bokeh": 1 << KWPhoto,
	"studio": 1 << KWPhoto, "lighting": 1 << KWPhoto, "hero": 1 << KWPhoto, "cinematic": 1 << KWPhoto, "shot": 1 << KWPhoto,
	"avatar": 1 << KWPortrait, "portrait": 1 << KWPortrait, "headshot": 1 << KWPortrait, "profile picture": 1 << KWPortrait,
	"selfie": 1 << KWPortrait, "icon": 1 << KWPortrait, "face": 1 << KWPortrait, "character": 1 << KWPortrait,
	"abstract": 1 << KWAbstract, "background": 1 << KWAbstract, "gradient": 1 << KWAbstract, "pattern": 1 << KWAbstract,
	"wallpaper": 1 << KWAbstract, "texture": 1 << KWAbstract, "geometric": 1 << KWAbstract, "shapes": 1 << KWAbstract,
	"replace": 1 << KWEditVerb, "remove": 1 << KWEditVerb, "add": 1 << KWEditVerb, "change": 1 << KWEditVerb,
	"make it": 1 << KWEditVerb, "turn": 1 << KWEditVerb, "recolor": 1 << KWEditVerb, "swap": 1 << KWEditVerb,
	"keep": 1 << KWPreserve, "same": 1 << KWPreserve, "preserve": 1 << KWPreserve, "unchanged": 1 << KWPreserve,
	"identity": 1 << KWPreserve, "consistent": 1 << KWPreserve,
	"illustration": 1 << KWStyle, "cartoon": 1 << KWStyle, "painting": 1 << KWStyle, "drawing": 1 << KWStyle,
	"sketch": 1 << KWStyle, "watercolor": 1 << KWStyle, "anime": 1 << KWStyle, "3d": 1 << KWStyle, "oil": 1 << KWStyle,
	"pixel": 1 << KWStyle, "vector": 1 << KWStyle, "style": 1 << KWStyle,
	"product": 1 << KWProduct, "bottle": 1 << KWProduct, "sneaker": 1 << KWProduct, "watch": 1 << KWProduct,
	"packshot": 1 << KWProduct, "perfume": 1 << KWProduct, "headphones": 1 << KWProduct,
	"landscape": 1 << KWScene, "city": 1 << KWScene, "street": 1 << KWScene, "forest": 1 << KWScene,
	"beach": 1 << KWScene, "room": 1 << KWScene, "mountain": 1 << KWScene, "sky": 1 << KWScene,
}

// phraseStart marks, in keywords, a word that begins a two-word phrase, so
// the pair is looked up only after such words.
const phraseStart = 1 << 15

// keywordHashes re-keys the keyword table by the FNV-1a hash of the
// lower-cased word or phrase, which scanPrompt computes anyway for the
// n-gram buckets; the first word of every phrase gets phraseStart.
func keywordHashes(m map[string]uint16) map[uint64]uint16 {
	out := make(map[uint64]uint16, len(m))
	for k, v := range m {
		out[fnv(k)] |= v
		if first, _, ok := strings.Cut(k, " "); ok {
			out[fnv(first)] |= phraseStart
		}
	}
	return out
}

func fnv(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

var keywordHash = keywordHashes(keywords)

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Extract computes the features of req as the router sees it at edit depth
// depth (the request's own depth, or the depth after a reset). It does not
// allocate.
func Extract(req *Request, depth int, f *Features) {
	f.N = 0
	f.Keywords = 0
	f.PromptLen = len(req.Prompt)
	f.RefCount = req.RefCount
	f.EditDepth = depth
	f.add(fBias)
	if req.Mode == ModeEdit {
		f.add(fEdit)
	}
	switch {
	case req.RefCount <= 0:
		f.add(fRef0)
	case req.RefCount == 1:
		f.add(fRef1)
	case req.RefCount == 2:
		f.add(fRef2)
	default:
		f.add(fRef3p)
	}
	f.add(depthFeature(depth))
	f.Aspect = 1
	if req.Width > 0 && req.Height > 0 {
		f.Aspect = float64(req.Width) / float64(req.Height)
	}
	switch {
	case f.Aspect > 1.15:
		f.add(fAspLandscape)
	case f.Aspect < 0.87:
		f.add(fAspPortrait)
	default:
		f.add(fAspSquare)
	}
	if req.Width*req.Height > 2_500_000 {
		f.add(fLarge)
	}
	switch req.Tier {
	case TierDraft:
		f.add(fTierDraft)
	case TierPremium:
		f.add(fTierPremium)
	default:
		f.add(fTierStandard)
	}
	if req.Constraints.TextHeavy {
		f.add(fTextHeavy)
	}
	if req.Constraints.PreserveSubject {
		f.add(fPreserve)
	}
	if req.Constraints.MaxLatencyMS > 0 {
		f.add(fMaxLatency)
	}
	if req.Constraints.MaxCostUSD > 0 {
		f.add(fMaxCost)
	}
	findTargets(req.Prompt, f)
	scanPrompt(req.Prompt, f)
}

func depthFeature(d int) int {
	switch {
	case d <= 0:
		return fDepth0
	case d == 1:
		return fDepth1
	case d == 2:
		return fDepth2
	case d <= 4:
		return fDepth3
	case d <= 6:
		return fDepth5
	case d <= 8:
		return fDepth7
	case d <= 10:
		return fDepth9
	}
	return fDepth11
}

// scanPrompt walks the prompt once: words are lower-cased into a stack
// buffer, looked up as keywords (alone and with the previous word) and hashed
// into uni- and bigram buckets.
func scanPrompt(p string, f *Features) {
	var cur [24]byte
	nc := 0
	var prevHash uint64
	havePrev, prevStart := false, false
	words := 0
	flush := func() {
		if nc == 0 {
			return
		}
		words++
		w := cur[:nc]
		h := uint64(fnvOffset)
		for _, c := range w {
			h ^= uint64(c)
			h *= fnvPrime
		}
		kw := keywordHash[h]
		f.Keywords |= kw &^ phraseStart
		f.addGram(h)
		if havePrev {
			if prevStart {
				// FNV-1a of "prev cur", continued from prev's hash.
				ph := (prevHash ^ ' ') * fnvPrime
				for _, c := range w {
					ph ^= uint64(c)
					ph *= fnvPrime
				}
				f.Keywords |= keywordHash[ph] &^ phraseStart
			}
			b := (prevHash*31 + h) ^ 0x9e3779b97f4a7c15
			b ^= b >> 29
			f.addGram(b)
		}
		prevHash, havePrev, prevStart = h, true, kw&phraseStart != 0
		nc = 0
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
			fallthrough
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80:
			if nc < len(cur) {
				cur[nc] = c
				nc++
			}
			continue
		case c == '\'':
			continue // "conductor's" is one word
		}
		flush()
	}
	flush()
	f.Words = words
	switch {
	case words < 5:
		f.add(fLen0)
	case words <= 12:
		f.add(fLen1)
	case words <= 25:
		f.add(fLen2)
	case words <= 50:
		f.add(fLen3)
	default:
		f.add(fLen4)
	}
	switch {
	case f.Quoted == 0:
	case f.Quoted <= 4:
		f.add(fQuotedShort)
	default:
		f.add(fQuotedLong)
	}
	for k := 0; k < numKW; k++ {
		if f.Keywords&(1<<k) != 0 {
			f.add(fKW + k)
		}
	}
}
