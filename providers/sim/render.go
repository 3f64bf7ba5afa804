package sim

import (
	"bytes"
	"hash/fnv"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"unicode"
)

// Render draws a picture for prompt at w×h and returns it as PNG bytes. The
// prompt picks the palette (colour words are honoured), the shapes (one per
// word) and the text (its target text, router.TargetTexts, drawn in Go Bold
// (lettering.go); otherwise word-like marks); seed moves the shapes. quality in [0,1] degrades it the
// way a weak model output looks, and so that QA (evaluator/qa) sees it:
//
//	q >= 0.6  crisp, with a fine grain like a photo's texture
//	q <  0.6  noise; below 0.45 a blur growing as q falls (QA sharpness
//	          fails from about q < 0.4)
//	q <  0.7  lettering garbled: letters replaced, dropped and swapped, more
//	          as q falls (q >= SuccessQuality draws it exactly)
//	q <  0.2  washed out towards a flat light grey (QA blank fails from about
//	          q < 0.1)
//
// Render is deterministic in its arguments and safe for concurrent use.
//
// Outputs larger than DetailSide on the longer side are drawn at that
// resolution and scaled up by repeating pixels (see renderCanvas).
func Render(prompt string, w, h int, quality float64, seed uint64) []byte {
	return encode(renderCanvas(nil, prompt, w, h, quality, seed))
}

// DetailSide bounds the resolution the simulator draws at: a larger output
// is drawn at most DetailSide pixels on its longer side (the output divided
// by the smallest integer f that fits, rounded up) and scaled up to the
// requested size by repeating each pixel f×f times, as models that generate
// small and upsample do. Automated QA measures on a plane of the same bound
// (evaluator/qa's default WorkSide, averaging f×f blocks), so it measures
// exactly what it would on the detail-size render, at a fraction of the cost
// (the repeated picture is never materialised: the PNG encoder writes a
// repeated row as Up-filtered zeros, QA reads the small image).
const DetailSide = 512

// detailSize is the size a w×h output is drawn at and its repeat factor.
func detailSize(w, h int) (dw, dh, f int) {
	f = 1
	for max(w, h)/f > DetailSide {
		f++
	}
	return max((w+f-1)/f, 1), max((h+f-1)/f, 1), f
}

// renderCanvas draws (ref == nil) or edits ref at the detail size, standing
// for the w×h picture.
func renderCanvas(ref image.Image, prompt string, w, h int, quality float64, seed uint64) *canvas {
	dw, dh, f := detailSize(w, h)
	var c *canvas
	if ref != nil {
		c = edit(ref, prompt, dw, dh, quality, seed)
	} else {
		c = draw(prompt, dw, dh, quality, seed)
	}
	if f == 1 {
		return c
	}
	return c.repeated(f, w, h)
}

// Edit renders an edit of ref (any decoded image): ref scaled to w×h with a
// small prompt-derived change; as quality falls, the subject drifts (ref is
// blended with a fresh render, so the perceptual hash moves) and the same
// degradation as Render applies.
func Edit(ref image.Image, prompt string, w, h int, quality float64, seed uint64) []byte {
	return encode(renderCanvas(ref, prompt, w, h, quality, seed))
}

func edit(ref image.Image, prompt string, w, h int, quality float64, seed uint64) *canvas {
	q := clamp01(quality)
	c := newCanvas(w, h)
	c.drawScaled(ref)
	r := rand.New(rand.NewPCG(seed, hashString(prompt)))
	// The edit itself: one shape from the prompt, in a corner, a sixth of the side.
	pal := palette(prompt)
	side := min(w, h)
	c.fillCircle(w-side/6-r.IntN(side/8+1), side/6+r.IntN(side/8+1), side/12+1, pal[3])
	if drift := clamp01((0.45 - q) / 0.3); drift > 0 {
		fresh := draw(prompt, w, h, 1, seed^0x9e3779b97f4a7c15)
		c.blend(fresh, drift)
	}
	degrade(c, q, r)
	return c
}

// draw renders the clean scene and degrades it.
func draw(prompt string, w, h int, quality float64, seed uint64) *canvas {
	q := clamp01(quality)
	ph := hashString(prompt)
	r := rand.New(rand.NewPCG(seed, ph))
	pal := palette(prompt)
	c := newCanvas(w, h)
	text := targetText(prompt)
	ink, band := inkAndBand(pal[4], pal[0], q)
	if text != "" {
		// A picture with lettering is drawn in pastels behind dark ink, as
		// posters are: OCR then sees the letters and passes over the
		// shapes, which it would otherwise read as stray O's and e's.
		for i := range pal {
			pal[i] = pastel(pal[i])
		}
	}
	c.gradient(pal[0], pal[1])
	side := min(w, h)
	words := strings.Fields(prompt)
	if len(words) > 8 {
		words = words[:8]
	}
	if len(words) == 0 {
		words = []string{""}
	}
	for i, word := range words {
		wh := hashString(word)
		col := pal[2+int(wh%3)]
		cx, cy := r.IntN(w), r.IntN(h*3/4+1)
		size := side/10 + int(wh>>8)%(side/4+1)
		switch wh % 4 {
		case 0:
			c.fillCircle(cx, cy, size/2+1, col)
		case 1:
			c.fillRect(cx-size/2, cy-size/3, cx+size/2, cy+size/3, col)
		case 2:
			c.fillTriangle(cx, cy-size/2, cx-size/2, cy+size/2, cx+size/2, cy+size/2, col)
		default:
			c.fillCircle(cx, cy, size/2+1, col)
			c.fillCircle(cx, cy, size/3, pal[(i+1)%len(pal)])
		}
	}
	c.grain(max(side/256, 1), 6, ph|1)
	if text == "" {
		c.marks(r, pal[4])
	} else {
		c.lettering(garble(text, q, r), ink, band)
	}
	degrade(c, q, r)
	return c
}

// degrade applies noise, blur and wash-out for quality q.
func degrade(c *canvas, q float64, r *rand.Rand) {
	side := min(c.w, c.h)
	if q < 0.6 {
		c.noise(20*(1-q)*(1-q), r.Uint64()|1)
	}
	if q < 0.45 {
		// Gaussian-like blur of sigma (0.45-q)*8 pixels up to 512 px, scaled
		// up beyond (QA measures on a plane of at most 512 px, so this is the
		// same blur to it at every size): two box passes of radius r have
		// variance 2r(r+1)/3.
		sigma := (0.45 - q) * 8 * max(1, float64(side)/512)
		radius := int(math.Round((math.Sqrt(1+6*sigma*sigma) - 1) / 2))
		if radius == 0 {
			radius = 1
		}
		passes := 1
		if sigma > 0.8 {
			passes = 2
		}
		c.blurPasses(radius, passes)
	}
	if q < 0.2 {
		c.washOut(0.03+0.97*math.Pow(q/0.2, 2), 232)
	}
}

var colorWords = map[string][3]uint8{
	"red": {210, 40, 40}, "orange": {240, 140, 30}, "yellow": {240, 210, 40},
	"green": {50, 160, 70}, "blue": {40, 90, 200}, "purple": {130, 60, 170},
	"pink": {240, 130, 170}, "black": {20, 20, 20}, "white": {245, 245, 245},
	"gold": {212, 175, 55}, "teal": {30, 140, 140}, "brown": {120, 80, 40},
	"sunset": {250, 110, 60}, "ocean": {20, 110, 170}, "forest": {30, 100, 50},
	"night": {20, 25, 60}, "snow": {235, 240, 250},
}

// palette derives six colours from the prompt: two for the background, three
// for shapes, one for text. Colour words in the prompt come first.
func palette(prompt string) [6][3]uint8 {
	var named [][3]uint8
	for _, w := range strings.FieldsFunc(strings.ToLower(prompt), func(r rune) bool { return !unicode.IsLetter(r) }) {
		if c, ok := colorWords[w]; ok {
			named = append(named, c)
		}
	}
	h := hashString(prompt)
	hue := float64(h%360) / 360
	var p [6][3]uint8
	base := []float64{0, 0.08, 0.5, 0.33, 0.66, 0.5}
	light := []float64{0.75, 0.55, 0.5, 0.45, 0.55, 0.15}
	for i := range p {
		p[i] = hsl(math.Mod(hue+base[i], 1), 0.6, light[i])
	}
	for i, c := range named {
		if i+1 >= 5 {
			break
		}
		p[i+1] = c
		if i == 0 {
			p[2] = c
		}
	}
	return p
}

func hsl(h, s, l float64) [3]uint8 {
	f := func(n float64) uint8 {
		k := math.Mod(n+h*12, 12)
		a := s * math.Min(l, 1-l)
		return uint8(255 * (l - a*math.Max(-1, math.Min(math.Min(k-3, 9-k), 1))))
	}
	return [3]uint8{f(0), f(8), f(4)}
}

func hashString(s string) uint64 {
	f := fnv.New64a()
	f.Write([]byte(s))
	return f.Sum64()
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// encoder writes PNGs at the fastest compression with pooled buffers: the sim
// is on the zero-latency benchmark path.
var encoder = png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &bufferPool{}}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() *png.EncoderBuffer {
	e, _ := b.p.Get().(*png.EncoderBuffer)
	return e
}
func (b *bufferPool) Put(e *png.EncoderBuffer) { b.p.Put(e) }

// encodeJPEG writes c as a JPEG (quality 90), for requests that ask for it.
func encodeJPEG(c *canvas) []byte {
	var buf bytes.Buffer
	c = c.flat()
	img := &image.NRGBA{Pix: c.pix, Stride: 4 * c.w, Rect: image.Rect(0, 0, c.w, c.h)}
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		panic("sim: jpeg encode to memory: " + err.Error()) // cannot fail for an in-memory image
	}
	return buf.Bytes()
}

func encode(c *canvas) []byte { return encodePNG(c) }
