package gateway

import (
	"context"
	"sync"
	"time"
)

// A high rate limit asked of the shared store once per request costs every
// request a store round trip that almost never says no. Such limits are
// leased instead: a replica takes a block of admissions from the store at
// once (one GCRA step of n), spends it from memory, and lets what it has
// not spent lapse after leaseWindow. Near the limit the block is refused
// and each request asks for one admission again, so the limit itself
// holds; far from it, the store sees one call per block. Low limits (under
// minLease admissions a window per replica) are never leased.

// BatchLimiter is a Limiter that can admit n requests in one step.
type BatchLimiter interface {
	Limiter
	AllowN(ctx context.Context, key string, r Rate, n int) (bool, time.Duration, error)
}

const (
	// leaseWindow is how long a leased block may be spent: a block is at
	// most this much of one replica's share of the rate.
	leaseWindow = 50 * time.Millisecond
	// minLease is the smallest block worth leasing.
	minLease = 8
)

// leaseSize is the largest block a replica leases of r, or 0 when r is
// too low to lease: a window of its share of the rate, and at most half
// its share of the burst, so that other replicas' bursts still pass.
// Blocks start at minLease and follow use (twice what the last block
// spent), so a replica that needs little of its share does not hold the
// rest from the others.
func leaseSize(r Rate, replicas int) int {
	replicas = max(replicas, 1)
	n := min(int(r.PerSec*leaseWindow.Seconds())/replicas, r.Burst/(2*replicas))
	if n < minLease {
		return 0
	}
	return n
}

type rateLease struct {
	left, size, spent int
	until             time.Time
	// exact: the store refused a block; until then requests ask for one
	// admission each, as at the limit a block would be refused again.
	exact time.Time
}

type rateLeases struct {
	mu sync.Mutex
	m  map[string]*rateLease
}

// fromLease admits one request from key's leased block, leasing a new one
// when it is spent. false without an error: r is not leased, or the store
// refused a whole block (the caller asks for one admission).
func (l *RateLimits) fromLease(ctx context.Context, key string, r Rate) (bool, error) {
	bl, ok := l.shared.(BatchLimiter)
	size := leaseSize(r, l.replicas)
	if !ok || size == 0 {
		return false, nil
	}
	now := l.now()
	l.leases.mu.Lock()
	b := l.leases.m[key]
	if b == nil {
		b = &rateLease{}
		l.leases.m[key] = b
	}
	switch {
	case b.left > 0 && now.Before(b.until):
		b.left--
		b.spent++
		l.leases.mu.Unlock()
		return true, nil
	case now.Before(b.exact):
		l.leases.mu.Unlock()
		return false, nil
	}
	// the next block: twice what the last one spent, within [minLease, size]
	n := min(max(2*b.spent, b.size, minLease), size)
	if !now.Before(b.until) && b.size > 0 {
		n = min(max(2*b.spent, minLease), size) // it lapsed: follow what it spent
	}
	l.leases.mu.Unlock()
	ok, wait, err := bl.AllowN(ctx, key, r, n)
	if err != nil {
		return false, err
	}
	l.leases.mu.Lock()
	defer l.leases.mu.Unlock()
	if !ok {
		b.exact = now.Add(max(wait, leaseWindow))
		return false, nil
	}
	if !now.Before(b.until) {
		b.left = 0
	}
	// concurrent refills add up: each was granted by the store
	b.left += n - 1
	b.size, b.spent = n, 1
	b.until = now.Add(leaseWindow)
	return true, nil
}
