package redisstate_test

import (
	"context"
	"testing"
	"time"

	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/redisstate"
	"github.com/routelab/routelab/redisstate/redistest"
)

// BenchmarkRequestOps is what one image request asks of the store: the
// key's rate and a daily cap booking, in turn, from 16 concurrent requests
// (edit-chain nodes stay on their replica: server.PeerChains).
func BenchmarkRequestOps(b *testing.B) {
	srv := redistest.Start(b)
	s := mustOpen(b, srv, redisstate.Options{})
	ctx := context.Background()
	day := time.Now().Unix() / 86400
	cs := []gateway.Counter{{Key: "tenant:bench", Limit: 1 << 40}}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if ok, _, err := s.Allow(ctx, "key:k", gateway.Rate{PerSec: 1e6, Burst: 1 << 30}); err != nil || !ok {
				b.Fatal(ok, err)
			}
			if idx, err := s.Reserve(ctx, day, cs, 1); err != nil || idx != -1 {
				b.Fatal(idx, err)
			}
		}
	})
}
