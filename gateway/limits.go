package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Daily caps and provider gates are per replica: behind N replicas a tenant
// gets N times its daily cap, a provider N times the concurrency.

// dailyCaps counts images per tenant per UTC day against the tenant's cap
// (its override, else the default; 0 is unlimited).
type dailyCaps struct {
	limit     int64
	overrides map[string]int64
	mu        sync.Mutex
	m         map[string]*dayCount
}

type dayCount struct {
	day int64
	n   int64
}

func newDailyCaps(limit int, overrides map[string]int) *dailyCaps {
	d := &dailyCaps{limit: int64(limit), overrides: make(map[string]int64, len(overrides)), m: make(map[string]*dayCount)}
	for t, n := range overrides {
		d.overrides[t] = int64(n)
	}
	return d
}

func (d *dailyCaps) limitOf(tenant string) int64 {
	if n, ok := d.overrides[tenant]; ok {
		return n
	}
	return d.limit
}

// reserve books n images for tenant today, or says how long until the cap
// resets. Call release when the images were not delivered.
func (d *dailyCaps) reserve(tenant string, n int, now time.Time) (bool, time.Duration) {
	limit := d.limitOf(tenant)
	if limit <= 0 {
		return true, 0
	}
	day := now.UTC().Unix() / 86400
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.m[tenant]
	if !ok || c.day != day {
		c = &dayCount{day: day}
		d.m[tenant] = c
	}
	if c.n+int64(n) > limit {
		reset := time.Unix((day+1)*86400, 0).Sub(now)
		return false, reset
	}
	c.n += int64(n)
	return true, 0
}

func (d *dailyCaps) release(tenant string, n int, now time.Time) {
	if d.limitOf(tenant) <= 0 {
		return
	}
	day := now.UTC().Unix() / 86400
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.m[tenant]; ok && c.day == day {
		c.n = max(0, c.n-int64(n))
	}
}

// gate bounds the calls in flight to one provider, with a short queue;
// past the queue, or after waiting too long, callers are shed.
type gate struct {
	slots   chan struct{}
	waiting atomic.Int64
	queue   int64
	wait    time.Duration
}

func newGate(concurrency, queue int, wait time.Duration) *gate {
	return &gate{slots: make(chan struct{}, concurrency), queue: int64(queue), wait: wait}
}

var errShed = &Error{Code: CodeOverloaded, Message: "model is at capacity; retry shortly", RetryAfter: time.Second}

// acquire takes a slot; the returned release must be called once.
func (g *gate) acquire(ctx context.Context) (func(), error) {
	select {
	case g.slots <- struct{}{}:
		return g.release, nil
	default:
	}
	if g.waiting.Add(1) > g.queue {
		g.waiting.Add(-1)
		return nil, errShed
	}
	defer g.waiting.Add(-1)
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return g.release, nil
	case <-t.C:
		return nil, errShed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *gate) release() { <-g.slots }

func (g *gate) inFlight() int { return len(g.slots) }
