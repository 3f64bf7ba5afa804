package redisstate_test

import (
	"context"
	"testing"
	"time"

	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/redisstate"
	"github.com/routelab/routelab/redisstate/redistest"
)

// BenchmarkRequestOpsSpend is BenchmarkRequestOps with the spend of each
// request counted: "caps" is that benchmark (the baseline), "unbudgeted"
// adds the batched spend of a tenant without a budget; a tenant with a
// budget books caps and the estimate in one script, and settles after
// only when the cost differs from the estimate ("budgeted_settled") or an
// alert is due.
func BenchmarkRequestOpsSpend(b *testing.B) {
	srv := redistest.Start(b)
	s := mustOpen(b, srv, redisstate.Options{})
	ctx := context.Background()
	day := time.Now().Unix() / 86400
	cs := []gateway.Counter{{Key: "tenant:bench", Limit: 1 << 40}}
	free := spendCounters("free", day, 0, 0)
	budgeted := spendCounters("bench", day, 1<<50, 1<<50)
	common := func(b *testing.B) {
		if ok, _, err := s.Allow(ctx, "key:k", gateway.Rate{PerSec: 1e6, Burst: 1 << 30}); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
	cases := []struct {
		name string
		op   func(b *testing.B)
	}{
		{"caps", func(b *testing.B) {
			common(b)
			if idx, err := s.Reserve(ctx, day, cs, 1); err != nil || idx != -1 {
				b.Fatal(idx, err)
			}
		}},
		{"unbudgeted", func(b *testing.B) {
			common(b)
			if idx, err := s.Reserve(ctx, day, cs, 1); err != nil || idx != -1 {
				b.Fatal(idx, err)
			}
			if err := s.AddSpend(ctx, free, 40_000); err != nil {
				b.Fatal(err)
			}
		}},
		{"budgeted_as_estimated", func(b *testing.B) {
			common(b)
			if idx, _, err := s.Book(ctx, day, cs, 1, budgeted, 40_000); err != nil || idx != -1 {
				b.Fatal(idx, err)
			}
		}},
		{"budgeted_settled", func(b *testing.B) {
			common(b)
			if idx, _, err := s.Book(ctx, day, cs, 1, budgeted, 40_000); err != nil || idx != -1 {
				b.Fatal(idx, err)
			}
			if _, err := s.Settle(ctx, budgeted, 1_000); err != nil {
				b.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.op(b)
				}
			})
		})
	}
}

// BenchmarkAddSpend is what counting a request without a budget costs
// the request: no round trip, an addition to this replica's batch.
func BenchmarkAddSpend(b *testing.B) {
	srv := redistest.Start(b)
	s := mustOpen(b, srv, redisstate.Options{})
	ctx := context.Background()
	free := spendCounters("free", time.Now().Unix()/86400, 0, 0)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.AddSpend(ctx, free, 40_000); err != nil {
				b.Fatal(err)
			}
		}
	})
}
