package qa_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
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
	type tc struct {
		name string
		b    []byte
	}
	var cases []tc
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
		cases = append(cases, tc{filepath.Base(p), MustPNG(t, img)})
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
		cases = append(cases, tc{name, MustPNG(t, img)})
	}
	prompt := `a poster that says "OPEN LATE" over a night street`
	for _, sz := range [][2]int{{512, 512}, {1248, 832}} {
		for _, q := range []float64{0.95, 0.5, 0.3, 0.05} {
			cases = append(cases, tc{fmt.Sprintf("sim-%dx%d-q%.2f", sz[0], sz[1], q), sim.Render(prompt, sz[0], sz[1], q, 11)})
		}
	}
	c := qa.New(qa.Thresholds{})
	ref := qa.HashImage(scene(64, 64, 1))
	passed, failed := 0, 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img, err := png.Decode(bytes.NewReader(tc.b))
			if err != nil {
				t.Fatal(err)
			}
			b := img.Bounds()
			for _, spec := range []qa.Spec{
				{Width: b.Dx(), Height: b.Dy(), Format: "png"},
				// format mismatch (0.5), size or aspect off for most, drift
				{Width: 1024, Height: 1024, Format: "jpeg", Reference: ref, HasReference: true, PreserveSubject: true},
			} {
				got, want := c.Check(tc.b, spec), c.CheckImage(img, qa.FormatPNG, spec)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("spec %+v:\nCheck (streamed) = %+v\nCheckImage(png.Decode) = %+v", spec, got, want)
				}
				if got.Pass {
					passed++
				} else {
					failed++
				}
			}
		})
	}
	// Both verdicts must be exercised, or the comparison proves little.
	if passed == 0 || failed == 0 {
		t.Fatalf("%d passed, %d failed: the images do not cover both verdicts", passed, failed)
	}
}

// TestStreamedJPEGVerdicts is TestStreamedPNGVerdicts for JPEG: Check
// reads an unseen JPEG's luma alone (jpegluma, image/jpeg's decoder
// without the chroma planes), and on the same corpus re-encoded as JPEG
// (the simulator's renders too, at qualities from 95 to 30; grey images
// as grey JPEGs) its result is the one CheckImage gives on the image
// jpeg.Decode returns.
func TestStreamedJPEGVerdicts(t *testing.T) {
	labtest.Heavy(t) // decodes hundreds of images: minutes under -race, and sequential
	type tc struct {
		name string
		b    []byte
	}
	var cases []tc
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
		cases = append(cases, tc{filepath.Base(p), MustJPEG(t, img, 90)})
	}
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
		for _, q := range []int{95, 60} {
			cases = append(cases, tc{fmt.Sprintf("%s-q%d", name, q), MustJPEG(t, img, q)})
		}
	}
	prompt := `a poster that says "OPEN LATE" over a night street`
	for _, sz := range [][2]int{{512, 512}, {1248, 832}} {
		for _, q := range []float64{0.95, 0.5, 0.3, 0.05} {
			img, err := png.Decode(bytes.NewReader(sim.Render(prompt, sz[0], sz[1], q, 11)))
			if err != nil {
				t.Fatal(err)
			}
			for _, jq := range []int{90, 30} {
				cases = append(cases, tc{fmt.Sprintf("sim-%dx%d-q%.2f-jpeg%d", sz[0], sz[1], q, jq), MustJPEG(t, img, jq)})
			}
		}
	}
	c := qa.New(qa.Thresholds{})
	ref := qa.HashImage(scene(64, 64, 1))
	passed, failed := 0, 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img, err := jpeg.Decode(bytes.NewReader(tc.b))
			if err != nil {
				t.Fatal(err)
			}
			b := img.Bounds()
			for _, spec := range []qa.Spec{
				{Width: b.Dx(), Height: b.Dy(), Format: "jpeg"},
				// format mismatch (0.5), size or aspect off for most, drift
				{Width: 1024, Height: 1024, Format: "png", Reference: ref, HasReference: true, PreserveSubject: true},
			} {
				got, want := c.Check(tc.b, spec), c.CheckImage(img, qa.FormatJPEG, spec)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("spec %+v:\nCheck (streamed) = %+v\nCheckImage(jpeg.Decode) = %+v", spec, got, want)
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
