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
	// refill is open while one request leases the next block; the others
	// wait for it and spend from the new block, so concurrent misses
	// neither each lease a block nor each ask the store
	refill chan struct{}
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
	for waited := false; ; waited = true {
		switch {
		case b.left > 0 && now.Before(b.until):
			b.left--
			b.spent++
			l.leases.mu.Unlock()
			return true, nil
		case now.Before(b.exact):
			l.leases.mu.Unlock()
			return false, nil
		case b.refill != nil && !waited:
			wait := b.refill
			l.leases.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return false, ctx.Err()
			}
			l.leases.mu.Lock()
			continue
		case b.refill != nil:
			l.leases.mu.Unlock()
			return false, nil // still leasing: ask for one
		}
		break
	}
	b.refill = make(chan struct{})
	// the next block: twice what the last one spent, within [minLease, size]
	n := min(max(2*b.spent, b.size, minLease), size)
	if !now.Before(b.until) && b.size > 0 {
		n = min(max(2*b.spent, minLease), size) // it lapsed: follow what it spent
	}
	l.leases.mu.Unlock()
	ok, wait, err := bl.AllowN(ctx, key, r, n)
	l.leases.mu.Lock()
	defer l.leases.mu.Unlock()
	close(b.refill)
	b.refill = nil
	if err != nil {
		return false, err
	}
	if !ok {
		b.exact = now.Add(max(wait, leaseWindow))
		return false, nil
	}
	if !now.Before(b.until) {
		b.left = 0
	}
	b.left += n - 1
	b.size, b.spent = n, 1
	b.until = now.Add(leaseWindow)
	return true, nil
}

// Daily caps are leased the same way when they are large: a replica books
// a block of a counter's images in the store at once and hands them out
// from memory. A block is at most a hundredth of the cap per replica, so
// the images a replica holds and does not use (lost at the day's end or a
// restart) are at most 1% of the cap; caps under minLease blocks are
// booked exactly, one request at a time, as before. Budgeted tenants' caps
// are booked with their spend in one store step and are never leased.

// capLeaseMax bounds a cap block.
const capLeaseMax = 4096

// capLeaseSize is the block a replica leases of a cap, or 0 for exact
// booking.
func capLeaseSize(limit int64, replicas int) int64 {
	n := min(limit/(100*int64(max(replicas, 1))), capLeaseMax)
	if n < minLease {
		return 0
	}
	return n
}

type capPool struct {
	day    int64
	left   int64
	refill chan struct{} // as rateLease.refill
}

// capLeases is a CapStore that leases large caps from next in blocks.
type capLeases struct {
	next     CapStore
	replicas int
	mu       sync.Mutex
	pools    map[string]*capPool
}

func newCapLeases(next CapStore, replicas int) *capLeases {
	return &capLeases{next: next, replicas: replicas, pools: map[string]*capPool{}}
}

// take hands out n of key's leased images for day, if it holds them.
// Otherwise refill says this caller should lease the next block, or wait
// is a block being leased by another (take again once it closes).
func (c *capLeases) take(key string, day, n int64) (ok, refill bool, wait chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[key]
	if p == nil || p.day != day {
		p = &capPool{day: day}
		c.pools[key] = p
	}
	switch {
	case p.left >= n:
		p.left -= n
		return true, false, nil
	case p.refill != nil:
		return false, false, p.refill
	}
	p.refill = make(chan struct{})
	return false, true, nil
}

// refilled ends a refill of key's block, adding n images of day.
func (c *capLeases) refilled(key string, day, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[key]
	close(p.refill)
	p.refill = nil
	if p.day == day {
		p.left += n
	}
}

// give puts n images of day back into key's block.
func (c *capLeases) give(key string, day, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[key]
	if p == nil || p.day != day {
		p = &capPool{day: day}
		c.pools[key] = p
	}
	p.left += n
}

// Reserve implements CapStore: leased counters from their blocks (a new
// block when spent; the exact n when the cap has no block's room left),
// then the exact counters in one store step. A refusal gives back what
// this call took.
func (c *capLeases) Reserve(ctx context.Context, day int64, counters []Counter, n int) (int, error) {
	var exact []Counter
	var exactAt []int // exact[i] is counters[exactAt[i]]
	var taken []Counter
	undo := func() {
		for _, t := range taken {
			c.give(t.Key, day, int64(n))
		}
	}
	for i, ct := range counters {
		size := capLeaseSize(ct.Limit, c.replicas)
		if size == 0 {
			exact, exactAt = append(exact, ct), append(exactAt, i)
			continue
		}
		ok, refill, wait := c.take(ct.Key, day, int64(n))
		if wait != nil { // another request is leasing the block: take from it
			select {
			case <-wait:
			case <-ctx.Done():
				undo()
				return 0, ctx.Err()
			}
			ok, refill, _ = c.take(ct.Key, day, int64(n))
		}
		if ok {
			taken = append(taken, ct)
			continue
		}
		// lease the next block, or book exactly when another request is
		// (still) leasing it or the cap has no block's room left
		extra, exact := int64(0), !refill
		refused, err := -1, error(nil)
		if refill {
			block := max(size, int64(n))
			refused, err = c.next.Reserve(ctx, day, []Counter{ct}, int(block))
			switch {
			case err == nil && refused >= 0:
				exact = true
			case err == nil:
				extra = block - int64(n)
			}
		}
		if exact && err == nil {
			refused, err = c.next.Reserve(ctx, day, []Counter{ct}, n)
		}
		if refill {
			c.refilled(ct.Key, day, extra)
		}
		switch {
		case err != nil:
			undo()
			return 0, err
		case refused >= 0:
			undo()
			return i, nil
		}
		taken = append(taken, ct)
	}
	if len(exact) > 0 {
		refused, err := c.next.Reserve(ctx, day, exact, n)
		if err != nil || refused >= 0 {
			undo()
			if err != nil {
				return 0, err
			}
			return exactAt[refused], nil
		}
	}
	return -1, nil
}

// Release implements CapStore: leased counters' images go back to their
// blocks, the others to the store.
func (c *capLeases) Release(ctx context.Context, day int64, counters []Counter, n int) error {
	var exact []Counter
	for _, ct := range counters {
		if capLeaseSize(ct.Limit, c.replicas) == 0 {
			exact = append(exact, ct)
			continue
		}
		c.give(ct.Key, day, int64(n))
	}
	if len(exact) == 0 {
		return nil
	}
	return c.next.Release(ctx, day, exact, n)
}
