package sim

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"testing"
	"time"

	"github.com/routelab/routelab/providers"

	"github.com/routelab/routelab/evaluator/qa"
)

// BenchmarkRenderQA is the per-image CPU of a fresh 1024 px simulated call
// with QA measuring the drawn image: drawing every pixel (baseline) against
// drawing at DetailSide and scaling up, each followed by the PNG encode and
// QA's checks. Qualities spread over the range (a third blurred), fresh
// prompts.
func BenchmarkRenderQA(b *testing.B) {
	qs := []float64{0.95, 0.85, 0.75, 0.65, 0.55, 0.5, 0.35, 0.25, 0.15, 0.9}
	chk := qa.New(qa.DefaultThresholds())
	spec := qa.Spec{Width: 1024, Height: 1024, Format: "png"}
	for _, tc := range []struct {
		name string
		draw func(prompt string, q float64, seed uint64) *canvas
	}{
		{"full-resolution", func(p string, q float64, s uint64) *canvas { return draw(p, 1024, 1024, q, s) }},
		{"detail-upscaled", func(p string, q float64, s uint64) *canvas { return renderCanvas(nil, p, 1024, 1024, q, s) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				c := tc.draw(fmt.Sprintf("a red fox %d in the snow", i), qs[i%len(qs)], uint64(i))
				encode(c)
				chk.CheckImage(c.image(), qa.FormatPNG, spec)
			}
		})
	}
}

// An edit of a chain's previous output reads the repeated picture's small
// pixels directly; it must draw what editing the same picture materialised
// at full size draws.
func TestEditOfRepeatedMatchesMaterialised(t *testing.T) {
	for _, size := range [][2]int{{1024, 1024}, {1536, 1024}, {2048, 2048}} {
		prev := renderCanvas(nil, `a red fox, "HELLO"`, size[0], size[1], 0.9, 3)
		if prev.rep <= 1 {
			t.Fatalf("%v: not drawn small (rep %d)", size, prev.rep)
		}
		flat := prev.flat()
		full := &image.NRGBA{Pix: flat.pix, Stride: 4 * flat.w, Rect: image.Rect(0, 0, flat.w, flat.h)}
		for _, out := range [][2]int{size, {1024, 1024}, {512, 768}} {
			got := renderCanvas(prev.image(), "add a hat", out[0], out[1], 0.7, 5)
			want := renderCanvas(full, "add a hat", out[0], out[1], 0.7, 5)
			if !bytes.Equal(got.pix, want.pix) {
				t.Errorf("edit %v of a %v picture: the repeated reference draws differently", out, size)
			}
		}
	}
}

// TestFailedDrawRendersFailed: a call the world judged failed must come out
// as a failed render, however close its quality is to SuccessQuality. The
// render cache quantises quality; rounding a failure at 0.675-0.7 up to 0.7
// drew its lettering intact, and OCR QA passed it (a cheap generalist then
// "succeeded" at text about 3 failures in 100 more than the hidden truth
// says).
func TestFailedDrawRendersFailed(t *testing.T) {
	const prompt = `A coffee cup labeled "MORNING"`
	for _, q := range []float64{0.676, 0.69, 0.6999, SuccessQuality, 0.72} {
		p := New(OracleFunc(func(context.Context, providers.Request, time.Duration) Outcome {
			return Outcome{Success: q >= SuccessQuality, Quality: q}
		}), Options{})
		res, err := p.Generate(context.Background(), providers.Request{Model: "sim-lite", Mode: "generate", Prompt: prompt, Width: 512, Height: 512})
		if err != nil {
			t.Fatal(err)
		}
		clean := Render(prompt, 512, 512, 1, hashString("sim-lite\x00"+prompt))
		if got, want := bytes.Equal(res.Images[0].Bytes, clean), q >= SuccessQuality; got != want {
			t.Errorf("quality %.4f: rendered as the clean picture %v, want %v", q, got, want)
		}
	}
}
