package gateway_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routelab/routelab/gateway"
)

// countingLimiter is a shared store in memory that counts its calls.
type countingLimiter struct {
	*gateway.MemLimiter
	calls atomic.Int64
}

func (c *countingLimiter) Allow(ctx context.Context, key string, r gateway.Rate) (bool, time.Duration, error) {
	c.calls.Add(1)
	return c.MemLimiter.Allow(ctx, key, r)
}

func (c *countingLimiter) AllowN(ctx context.Context, key string, r gateway.Rate, n int) (bool, time.Duration, error) {
	c.calls.Add(1)
	return c.MemLimiter.AllowN(ctx, key, r, n)
}

// TestRateLeases: a high rate is spent from leased blocks, one store call
// per block, and admits exactly what asking per request would (the burst
// at once, then the rate); a low rate is asked of the store per request.
func TestRateLeases(t *testing.T) {
	tests := []struct {
		name      string
		rate      gateway.Rate
		requests  int
		step      time.Duration // the clock between requests
		admitted  int
		maxCalls  int64
		exactRate bool // every request asks the store
	}{
		// a burst of 1,000 at once: growing blocks until one is refused,
		// then each request asks for one (at the limit, exactness first)
		{"burst at once", gateway.Rate{PerSec: 10000, Burst: 1000}, 3000, 0, 1000, 3000 + 8, false},
		// half the rate for a second: every request passes, a few dozen blocks
		{"under the rate", gateway.Rate{PerSec: 10000, Burst: 1000}, 5000, 200 * time.Microsecond, 5000, 60, false},
		{"low rate, not leased", gateway.Rate{PerSec: 10, Burst: 5}, 50, 0, 5, 50, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_800_000_000, 0)
			clock := func() time.Time { return now }
			store := &countingLimiter{MemLimiter: gateway.NewMemLimiter(clock)}
			want := gateway.NewMemLimiter(clock) // the same requests asked one by one
			limits := gateway.NewRateLimits(store, 1, clock, nil)
			admitted, wantAdmitted := 0, 0
			for range tt.requests {
				if ok, _ := limits.Allow(context.Background(), "key:k", tt.rate); ok {
					admitted++
				}
				if ok, _, _ := want.Allow(context.Background(), "key:k", tt.rate); ok {
					wantAdmitted++
				}
				now = now.Add(tt.step)
			}
			if admitted != tt.admitted || admitted != wantAdmitted {
				t.Errorf("admitted %d of %d, want %d (asked one by one: %d)", admitted, tt.requests, tt.admitted, wantAdmitted)
			}
			if c := store.calls.Load(); c > tt.maxCalls || (tt.exactRate && c != int64(tt.requests)) {
				t.Errorf("%d store calls for %d requests, want at most %d", c, tt.requests, tt.maxCalls)
			}
		})
	}
}

// TestRateLeasesShared: two replicas lease from one store; one needs a
// twentieth of the rate, the other most of it. Blocks follow use, so the
// quiet replica holds little and every request of the busy one passes.
func TestRateLeasesShared(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	store := &countingLimiter{MemLimiter: gateway.NewMemLimiter(clock)}
	quiet, busy := gateway.NewRateLimits(store, 2, clock, nil), gateway.NewRateLimits(store, 2, clock, nil)
	r := gateway.Rate{PerSec: 10000, Burst: 1000}
	refused := 0
	for i := range 9000 { // one second: 500 quiet requests, 8,500 busy ones
		l := busy
		if i%18 == 0 {
			l = quiet
		}
		if ok, _ := l.Allow(context.Background(), "key:k", r); !ok {
			refused++
		}
		now = now.Add(time.Second / 9000)
	}
	if refused > 0 {
		t.Errorf("%d of 9,000 requests refused under a rate of 10,000/s", refused)
	}
	if c := store.calls.Load(); c > 9000/10 {
		t.Errorf("%d store calls for 9,000 requests, want blocks", c)
	}
}
