package router_test

import (
	"encoding/json"
	"testing"

	"github.com/routelab/routelab/router"
)

var benchBody = []byte(`{"id":"req-123456","tenant":"acme","unit":"user-42","mode":"generate","prompt":"A vintage travel poster for Lisbon with the headline \"VISIT LISBON\" in bold art deco lettering, tram in the foreground","width":1024,"height":1536,"tier":"standard","constraints":{"text_heavy":true,"max_latency_ms":15000}}`)

// benchPolicy is replaced by a trained policy in train_test.go's init of
// the benchmark when available; the rules policy is the fallback.
func benchDecide(b *testing.B, p *router.Policy) {
	var req router.Request
	if err := json.Unmarshal(benchBody, &req); err != nil {
		b.Fatal(err)
	}
	req.Constraints.TextHeavy = false // let the classifier decide, not a rule
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := router.Decide(req, p, nil)
		if d.Model == "" {
			b.Fatal(d.Reason)
		}
	}
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

func BenchmarkDecideRules(b *testing.B) { benchDecide(b, mustPolicy(b, "rules")) }
