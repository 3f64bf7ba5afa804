package sim

import (
	"fmt"
	"testing"

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
