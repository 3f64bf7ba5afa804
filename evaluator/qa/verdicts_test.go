package qa_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/lab/labtest"
	"github.com/routelab/routelab/providers/sim"
)

// TestStreamedPNGVerdicts: Check reads an unseen PNG without decoding it
// (inflate, unfilter and luma row by row); on every kind of image QA
// meets, its result, verdict, score, every check's value and the hashes,
// is the one CheckImage gives on the image png.Decode returns. The images:
// the test data re-encoded as PNG, generated blank, near-blank, noise and
// scene images in every colour model Go's encoder writes, and the
// simulator's renders with lettering from crisp to washed out, square and
// at Gemini's 3:2 (work planes at full size and averaged 2x2 and 3x3).
func TestStreamedPNGVerdicts(t *testing.T) {
	labtest.Heavy(t) // decodes hundreds of images: minutes under -race, and sequential
	var cases []encoded
	for _, c := range verdictCorpus(t) {
		b := c.png
		if b == nil {
			b = MustPNG(t, c.img)
		}
		cases = append(cases, encoded{c.name, b})
	}
	compareStreamed(t, cases, qa.FormatPNG, qa.FormatJPEG, png.Decode)
}

// TestStreamedJPEGVerdicts is TestStreamedPNGVerdicts for JPEG: Check
// reads an unseen JPEG's luma alone (jpegluma, image/jpeg's decoder
// without the chroma planes), and on the same corpus re-encoded as JPEG
// (the test data at quality 90, the generated images at 95 and 60, the
// simulator's renders at 90 and 30; grey images as grey JPEGs) its result
// is the one CheckImage gives on the image jpeg.Decode returns.
func TestStreamedJPEGVerdicts(t *testing.T) {
	labtest.Heavy(t) // decodes hundreds of images: minutes under -race, and sequential
	var cases []encoded
	for _, c := range verdictCorpus(t) {
		qs := map[string][]int{"file": {90}, "generated": {95, 60}, "sim": {90, 30}}[c.kind]
		for _, q := range qs {
			name := fmt.Sprintf("%s-q%d", c.name, q)
			if c.kind == "file" {
				name = c.name
			} else if c.kind == "sim" {
				name = fmt.Sprintf("%s-jpeg%d", c.name, q)
			}
			cases = append(cases, encoded{name, MustJPEG(t, c.img, q)})
		}
	}
	compareStreamed(t, cases, qa.FormatJPEG, qa.FormatPNG, jpeg.Decode)
}

type encoded struct {
	name string
	b    []byte
}

// corpusImage is one image of the verdict corpus; kind is file (test
// data), generated or sim (a simulator render, whose own PNG bytes are
// png).
type corpusImage struct {
	name, kind string
	img        image.Image
	png        []byte
}

// verdictCorpus is every kind of image QA meets, decoded.
func verdictCorpus(t *testing.T) []corpusImage {
	t.Helper()
	var out []corpusImage
	files, _ := filepath.Glob("testdata/*.webp")
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := qa.Decode(raw, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, corpusImage{name: filepath.Base(p), kind: "file", img: img})
	}
	// Sizes cover work planes at full size (f 1) and averaged 2x2 and 3x3,
	// kept small: under the race detector every pixel costs.
	gen := map[string]image.Image{
		"blank":       uniform(640, 480, color.RGBA{200, 200, 200, 255}, 0, 1),
		"near-blank":  uniform(500, 500, color.RGBA{120, 130, 140, 255}, 2, 2),
		"noise":       uniform(600, 400, color.RGBA{128, 128, 128, 255}, 100, 3),
		"scene":       scene(768, 768, 4),
		"scene-grain": func() image.Image { m := scene(768, 512, 5); grain(m, 12, 6); return m }(),
		"grey":        toGray(scene(700, 1050, 7)),
		"translucent": translucent(scene(624, 416, 8)),
	}
	for name, img := range gen {
		out = append(out, corpusImage{name: name, kind: "generated", img: img})
	}
	prompt := `a poster that says "OPEN LATE" over a night street`
	for _, sz := range [][2]int{{512, 512}, {1248, 832}} {
		for _, q := range []float64{0.95, 0.5, 0.3, 0.05} {
			b := sim.Render(prompt, sz[0], sz[1], q, 11)
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, corpusImage{name: fmt.Sprintf("sim-%dx%d-q%.2f", sz[0], sz[1], q), kind: "sim", img: img, png: b})
		}
	}
	return out
}

// compareStreamed checks each case of format with Check and with
// CheckImage on decode's image, under a spec that matches it and one that
// asks for other (a format mismatch, a size or aspect off for most, drift
// against a reference), and wants the results equal and both verdicts
// exercised, or the comparison proves little.
func compareStreamed(t *testing.T, cases []encoded, format, other string, decode func(io.Reader) (image.Image, error)) {
	t.Helper()
	c := qa.New(qa.Thresholds{})
	ref := qa.HashImage(scene(64, 64, 1))
	passed, failed := 0, 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img, err := decode(bytes.NewReader(tc.b))
			if err != nil {
				t.Fatal(err)
			}
			b := img.Bounds()
			for _, spec := range []qa.Spec{
				{Width: b.Dx(), Height: b.Dy(), Format: format},
				{Width: 1024, Height: 1024, Format: other, Reference: ref, HasReference: true, PreserveSubject: true},
			} {
				got, want := c.Check(tc.b, spec), c.CheckImage(img, format, spec)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("spec %+v:\nCheck (streamed) = %+v\nCheckImage(%s decode) = %+v", spec, got, format, want)
				}
				if got.Pass {
					passed++
				} else {
					failed++
				}
			}
		})
	}
	if passed == 0 || failed == 0 {
		t.Fatalf("%d passed, %d failed: the images do not cover both verdicts", passed, failed)
	}
}

func toGray(m image.Image) *image.Gray {
	g := image.NewGray(m.Bounds())
	draw.Draw(g, g.Bounds(), m, m.Bounds().Min, draw.Src)
	return g
}

// translucent is m with a varying alpha (encoded as RGBA, colour type 6).
func translucent(m *image.RGBA) *image.NRGBA {
	n := image.NewNRGBA(m.Bounds())
	for i := 0; i < len(m.Pix); i += 4 {
		copy(n.Pix[i:i+3], m.Pix[i:i+3])
		n.Pix[i+3] = uint8(128 + i/4%128)
	}
	return n
}
