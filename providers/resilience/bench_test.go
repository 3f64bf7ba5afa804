package resilience_test

import (
	"context"
	"testing"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/resilience"
)

// okProvider answers at once with a fixed result.
type okProvider struct{ res providers.Result }

func (okProvider) Name() string { return "ok" }
func (p okProvider) Generate(context.Context, providers.Request) (providers.Result, error) {
	return p.res, nil
}

// BenchmarkWrap interleaves a bare call and a call through the breaker and
// retrier in every iteration (so machine load hits both alike) and reports
// each one's mean and the added cost per call.
func BenchmarkWrap(b *testing.B) {
	bare := okProvider{res: providers.Result{Images: []providers.Image{{Bytes: []byte("img")}}}}
	set := resilience.NewBreakers(resilience.BreakerConfig{}, nil, nil)
	wrapped := resilience.Wrap(bare, set.For("m"), resilience.NewRetrier(resilience.RetryPolicy{}, resilience.Env{}))
	ctx := context.Background()
	var tb, tw time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := bare.Generate(ctx, providers.Request{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := wrapped.Generate(ctx, providers.Request{}); err != nil {
			b.Fatal(err)
		}
		tb += t1.Sub(t0)
		tw += time.Since(t1)
	}
	b.ReportMetric(float64(tb.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(tw.Nanoseconds())/float64(b.N), "wrapped-ns/op")
	b.ReportMetric(float64((tw-tb).Nanoseconds())/float64(b.N), "added-ns/op")
}

// BenchmarkUsable is the router's health question per candidate model.
func BenchmarkUsable(b *testing.B) {
	set := resilience.NewBreakers(resilience.BreakerConfig{}, nil, nil)
	set.For("m")
	b.ReportAllocs()
	for b.Loop() {
		set.Usable("p", "m")
	}
}
