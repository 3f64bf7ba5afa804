package sim

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"

	"github.com/routelab/routelab/router"
)

// Lettering: the words a prompt asks to render (router.TargetTexts) drawn
// in Go Bold, so that OCR QA reads simulated outputs as it would real
// ones. A render that succeeds (quality >= SuccessQuality) draws them
// exactly; a failed one garbles them the way generalist models do, with
// letters dropped, swapped and replaced, more as quality falls.

var (
	boldOnce sync.Once
	bold     *sfnt.Font
)

func boldFont() *sfnt.Font {
	boldOnce.Do(func() {
		f, err := opentype.Parse(gobold.TTF)
		if err != nil {
			panic("sim: parse Go Bold: " + err.Error()) // the embedded font is fixed bytes
		}
		bold = f
	})
	return bold
}

// maxLetteringLines and maxLineRunes bound the lettering drawn: longer
// target text is cut, as layout-heavy prompts overflow a generalist's
// poster.
const (
	maxLetteringLines = 4
	maxLineRunes      = 24
)

// targetText is the text a render draws for prompt: its target texts,
// one after another.
func targetText(prompt string) string {
	return strings.Join(router.TargetTexts(prompt), " ")
}

// garble damages s for a failed render of quality q < SuccessQuality: a
// share of its letters and digits, from 35% just under success to 85% at
// q = 0 and at least one, is replaced, dropped or swapped with its
// neighbour. A fixed share rather than a coin per letter: a failed draw
// never comes out intact by luck.
func garble(s string, q float64, r *rand.Rand) string {
	if q >= SuccessQuality {
		return s
	}
	p := 0.35 + 0.5*clamp01((SuccessQuality-q)/SuccessQuality)
	in := []rune(s)
	var pos []int
	for i, ch := range in {
		if unicode.IsLetter(ch) || unicode.IsDigit(ch) {
			pos = append(pos, i)
		}
	}
	if len(pos) == 0 {
		return s
	}
	k := max(1, int(math.Ceil(p*float64(len(pos)))))
	r.Shuffle(len(pos), func(i, j int) { pos[i], pos[j] = pos[j], pos[i] })
	hit := make(map[int]bool, k)
	for _, i := range pos[:k] {
		hit[i] = true
	}
	out := make([]rune, 0, len(in))
	for i := 0; i < len(in); i++ {
		ch := in[i]
		if !hit[i] {
			out = append(out, ch)
			continue
		}
		switch r.IntN(3) {
		case 0: // replaced
			sub := rune('a' + r.IntN(26))
			if !unicode.IsLower(ch) {
				sub = unicode.ToUpper(sub)
			}
			if sub == unicode.ToUpper(ch) || sub == ch {
				sub = '#' // never replaced by itself
			}
			out = append(out, sub)
		case 1: // dropped
		default: // swapped with the next character, or doubled at a word's end
			if i+1 < len(in) && in[i+1] != ' ' && in[i+1] != ch {
				out = append(out, in[i+1], ch)
				i++
			} else {
				out = append(out, ch, ch)
			}
		}
	}
	return string(out)
}

// wrap breaks s into at most maxLetteringLines lines of about maxLineRunes.
func wrap(s string) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		if rw := []rune(w); len(rw) > maxLineRunes {
			w = string(rw[:maxLineRunes])
		}
		switch {
		case cur == "":
			cur = w
		case len([]rune(cur))+1+len([]rune(w)) <= maxLineRunes:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = w
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	if len(lines) > maxLetteringLines {
		lines = lines[:maxLetteringLines]
	}
	return lines
}

// lettering draws s on a light band across the lower part of c, dark
// letters sized to fill about 75% of the width, at most a tenth of the
// height per line.
func (c *canvas) lettering(s string, ink, band [3]uint8) {
	lines := wrap(s)
	if len(lines) == 0 {
		return
	}
	f := boldFont()
	const ref = 100 // measure at 100 px, then scale
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: ref, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return
	}
	widest := fixed.I(1)
	for _, l := range lines {
		widest = max(widest, font.MeasureString(face, l))
	}
	face.Close()
	size := float64(ref) * float64(c.w) * 0.75 / (float64(widest) / 64)
	size = min(size, float64(c.h)/10)
	if size < 6 {
		return // too small a canvas for letters anyone could read
	}
	face, err = opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return
	}
	defer face.Close()
	lineH := int(size * 1.25)
	pad := int(size / 3)
	top := c.h*2/3 - lineH*(len(lines)-1)/2
	top = max(pad, min(top, c.h-lineH*len(lines)-pad))
	dst := &image.NRGBA{Pix: c.pix, Stride: 4 * c.w, Rect: image.Rect(0, 0, c.w, c.h)}
	// The band runs to the bottom edge: Tesseract (--psm 11), reading the
	// whole picture, missed lettering on a band with dark picture below it
	// in half of 24 legible renders, and read all of 72 this way.
	c.fillRect(0, top-2*pad, c.w, c.h, band)
	d := font.Drawer{Dst: dst, Src: image.NewUniform(nrgba(ink)), Face: face}
	for i, l := range lines {
		wpx := font.MeasureString(face, l).Ceil()
		d.Dot = fixed.P((c.w-wpx)/2, top+i*lineH+int(size*0.95))
		d.DrawString(l)
	}
}

// inkAndBand picks readable colours from the palette: the band is the
// background colour taken most of the way to white, the ink the text
// colour taken most of the way to black. A failed render's ink fades
// towards the band, and the band towards the background, as quality falls
// (smudged, low-contrast lettering),
// which also keeps blurred renders failing QA's sharpness check: crisp
// dark-on-light letters would hold the Laplacian variance up on their own.
func inkAndBand(text, bg [3]uint8, q float64) (ink, band [3]uint8) {
	fade, lift := 0, 200
	if q < SuccessQuality {
		x := clamp01((SuccessQuality - q) / SuccessQuality)
		fade, lift = int(256*(0.3+0.6*x)), 200-int(120*x)
	}
	for i := range 3 {
		band[i] = mix(bg[i], 250, lift)
		ink[i] = mix(mix(text[i], 10, 190), band[i], fade)
	}
	return ink, band
}

// pastel takes a colour nearly four fifths of the way to white.
func pastel(col [3]uint8) [3]uint8 {
	return [3]uint8{mix(col[0], 250, 200), mix(col[1], 250, 200), mix(col[2], 250, 200)}
}

func nrgba(c [3]uint8) color.NRGBA { return color.NRGBA{c[0], c[1], c[2], 255} }
