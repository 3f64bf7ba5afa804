package sim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/sim"
)

// BenchmarkGenerateQA is one simulated 1024 px call plus automated QA, the
// per-image CPU of live traffic through routelab dev (fresh prompts, so
// neither the render nor the QA cache hits; qualities spread over the
// range, a third of them blurred). Baseline "qa-decodes-bytes": QA decodes
// the PNG; "qa-uses-decoded": QA measures the image the simulator drew.
func BenchmarkGenerateQA(b *testing.B) {
	qs := []float64{0.95, 0.85, 0.75, 0.65, 0.55, 0.5, 0.35, 0.25, 0.15, 0.9}
	p := sim.New(sim.OracleFunc(func(_ context.Context, r providers.Request, _ time.Duration) sim.Outcome {
		q := qs[r.Seed%uint64(len(qs))]
		return sim.Outcome{Success: q >= sim.SuccessQuality, Quality: q}
	}), sim.Options{CacheBytes: -1})
	chk := qa.New(qa.DefaultThresholds())
	spec := qa.Spec{Width: 1024, Height: 1024, Format: "png"}
	for _, tc := range []struct {
		name    string
		decoded bool
	}{{"qa-decodes-bytes", false}, {"qa-uses-decoded", true}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				req := providers.Request{Model: "m", Prompt: fmt.Sprintf("a red fox %d in the snow", i%50), Width: 1024, Height: 1024, Seed: uint64(i)}
				res, err := p.Generate(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				img := res.Images[0]
				if tc.decoded {
					chk.CheckDecoded(img.Bytes, img.Decoded, img.Digest, spec)
				} else {
					chk.Check(img.Bytes, spec)
				}
			}
		})
	}
}
