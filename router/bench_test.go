package router_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

var benchBody = []byte(`{"id":"req-123456","tenant":"acme","unit":"user-42","mode":"generate","prompt":"A vintage travel poster for Lisbon with the headline \"VISIT LISBON\" in bold art deco lettering, tram in the foreground","width":1024,"height":1536,"tier":"standard","constraints":{"max_latency_ms":15000}}`)

var (
	trainedOnce sync.Once
	trained     *router.Policy
	trainedErr  error
)

// trainedPolicy trains a policy the way the lab does: the shipped
// exploring policy logs 20,000 simulated requests, Train fits on them.
func trainedPolicy(b testing.TB) *router.Policy {
	b.Helper()
	trainedOnce.Do(func() {
		items, err := datasets.Generate(99, 20000)
		if err != nil {
			trainedErr = err
			return
		}
		explore, err := datasets.Policy("explore")
		if err != nil {
			trainedErr = err
			return
		}
		w := sim.NewWorld(router.Catalog{Models: explore.Models}, 1)
		var ex []router.Example
		for i := range items {
			req := &items[i].Request
			d := router.Decide(*req, explore, nil)
			s := w.Judge(req, items[i].Task, &d)
			ev := s.Event(req, &d, int64(i))
			if x, ok := router.ExampleFromDecision(&ev, req.Width, req.Height); ok {
				ex = append(ex, x)
			}
		}
		trained, trainedErr = router.Train(ex, router.TrainConfig{Models: explore.Models, DefaultModel: explore.DefaultModel, Rules: explore.Rules, Epsilon: 0.02})
	})
	if trainedErr != nil {
		b.Fatal(trainedErr)
	}
	return trained
}

var (
	decodeOnce sync.Once
	decodeNs   float64
)

// decodeBaseline is the cost of json-decoding the request body, measured
// in this run.
func decodeBaseline() float64 {
	decodeOnce.Do(func() {
		// testing.Benchmark cannot run inside a benchmark, so time a fixed
		// number of decodes directly (about 0.2 s).
		const n = 20000
		start := time.Now()
		for i := 0; i < n; i++ {
			var req router.Request
			if err := json.Unmarshal(benchBody, &req); err != nil {
				panic(err)
			}
		}
		decodeNs = float64(time.Since(start).Nanoseconds()) / n
	})
	return decodeNs
}

// BenchmarkDecodeBody is the baseline: json-decoding the request body that
// Decide's input comes from.
func BenchmarkDecodeBody(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var req router.Request
		if err := json.Unmarshal(benchBody, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecide(b *testing.B, p *router.Policy) {
	var req router.Request
	if err := json.Unmarshal(benchBody, &req); err != nil {
		b.Fatal(err)
	}
	base := decodeBaseline()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := router.Decide(req, p, nil)
		if d.Model == "" {
			b.Fatal(d.Reason)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x_decode")
}

// BenchmarkDecide: the default catalog and a trained policy (classifier,
// calibration maps, thresholds, exploration). x_decode is its time as a
// multiple of json-decoding the request body in the same run.
func BenchmarkDecide(b *testing.B) { benchDecide(b, trainedPolicy(b)) }

// BenchmarkDecideRules: the shipped rules-only policy.
func BenchmarkDecideRules(b *testing.B) { benchDecide(b, mustPolicy(b, "rules")) }

// BenchmarkExtract is feature extraction alone.
func BenchmarkExtract(b *testing.B) {
	var req router.Request
	if err := json.Unmarshal(benchBody, &req); err != nil {
		b.Fatal(err)
	}
	var f router.Features
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		router.Extract(&req, 0, &f)
	}
}

// BenchmarkExtractPhrased: a prompt whose target text is not quoted, so
// extraction also runs the phrasing pass.
func BenchmarkExtractPhrased(b *testing.B) {
	req := router.Request{Mode: router.ModeGenerate, Prompt: "A portrait photo of a kangaroo wearing an orange hoodie and blue sunglasses standing on the grass in front of the Sydney Opera House holding a sign on the chest that says Welcome Friends!", Width: 1024, Height: 1024}
	var f router.Features
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		router.Extract(&req, 0, &f)
	}
	if f.NTargets != 1 {
		b.Fatalf("NTargets = %d, want 1", f.NTargets)
	}
}
