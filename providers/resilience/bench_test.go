package resilience_test

import (
	"context"
	"testing"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/providerstest"
	"github.com/routelab/routelab/providers/resilience"
)

// BenchmarkWrap is the per-call cost of the breaker and retrier on the
// success path, against calling the same provider bare in the same run.
func BenchmarkWrap(b *testing.B) {
	up := &providerstest.Scripted{}
	set := resilience.NewBreakers(resilience.BreakerConfig{}, nil, nil)
	wrapped := resilience.Wrap(up, set.For("m"), resilience.NewRetrier(resilience.RetryPolicy{}, resilience.Env{}))
	for _, tc := range []struct {
		name string
		p    providers.Provider
	}{{"bare", up}, {"wrapped", wrapped}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.p.Generate(context.Background(), providers.Request{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("usable", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			set.Usable("p", "m")
		}
	})
}
