package sim_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"testing"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/sim"
)

// BenchmarkRender compares Render with the baseline of PNG-encoding an
// already drawn image of the same size with the standard encoder's defaults.
func BenchmarkRender(b *testing.B) {
	for _, side := range []int{256, 1024} {
		img := MustDecode(b, sim.Render("a red fox in a snowy forest", side, side, 1, 1))
		b.Run(fmt.Sprintf("%d/baseline-png-encode", side), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var buf bytes.Buffer
				if err := png.Encode(&buf, img); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, q := range []float64{1, 0.3} {
			b.Run(fmt.Sprintf("%d/render-q%.1f", side, q), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					sim.Render("a red fox in a snowy forest", side, side, q, 1)
				}
			})
		}
	}
}

// BenchmarkGenerate is the zero-latency provider as the serving benchmark
// uses it: cached (same prompt and model, as a load generator replays)
// against uncached (every call renders).
func BenchmarkGenerate(b *testing.B) {
	v := sim.Outcome{Success: true, Quality: 0.9}
	for _, tc := range []struct {
		name  string
		cache int64
	}{{"uncached", -1}, {"cached", 0}} {
		p := sim.New(fixed(v), sim.Options{CacheBytes: tc.cache})
		req := providers.Request{Model: "m", Prompt: "a red fox in a snowy forest"}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Generate(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
