package gateway

import (
	"context"
	"errors"
	"math"
	"net/url"
	"sync"
	"time"
)

// The state replicas must share (daily caps, rate limits and vendor
// budgets, edit chains) sits behind the small interfaces below. Without a
// shared store each replica keeps its own in memory (the Mem types): right
// for one replica, while N replicas give a tenant N times its cap. With a
// Redis-protocol store (redisstate) every replica sees the same counters.
//
// A store that cannot be reached is handled by what each part protects:
// rate limits and vendor budgets fall back to this replica's share
// (limit / Config.Replicas), daily caps and spend budgets refuse (503
// state_unavailable: an unbounded spend is worse than a refused request),
// and edit chains fail open to this replica's memory.

// ErrStateUnavailable wraps a shared store's errors: it could not be
// reached, or did not answer in time.
var ErrStateUnavailable = errors.New("shared state store unavailable")

// Counter is one daily cap: a counter key and its limit for the day.
type Counter struct {
	Key   string
	Limit int64
}

// CapStore books images against daily counters.
type CapStore interface {
	// Reserve adds n to every counter of day when none would pass its
	// limit, and returns -1; otherwise it adds nothing and returns the
	// index of the first counter that would. The counters of a day are
	// forgotten after it. Errors wrap ErrStateUnavailable.
	Reserve(ctx context.Context, day int64, counters []Counter, n int) (int, error)
	// Release takes back n booked by Reserve (images not delivered).
	Release(ctx context.Context, day int64, counters []Counter, n int) error
}

// Rate is a rate limit: PerSec on average, Burst at once.
type Rate struct {
	PerSec float64
	Burst  int
}

// share is one replica's part of r when replicas share it.
func (r Rate) share(replicas int) Rate {
	if replicas <= 1 {
		return r
	}
	return Rate{PerSec: r.PerSec / float64(replicas), Burst: max(1, r.Burst/replicas)}
}

// Limiter admits requests under a rate per key (GCRA: a request is let in
// when it keeps the key within Burst of its schedule).
type Limiter interface {
	// Allow admits one request for key or says how long until one would
	// be admitted. Errors wrap ErrStateUnavailable.
	Allow(ctx context.Context, key string, r Rate) (bool, time.Duration, error)
}

// ChainNode is one output an edit may name as its parent_id.
type ChainNode struct {
	ID     string
	Tenant string
	Parent string // "" for the first image of a chain
	Depth  int
	Score  float64 // QA score; higher is cleaner
	Model  string
	Root   bool   // a reset started a new segment here
	Image  []byte // the first returned image
}

// ChainMeta is a chain node's fields but its id and image, as a store
// keeps them or one replica tells another (JSON).
type ChainMeta struct {
	Tenant string  `json:"tenant"`
	Parent string  `json:"parent,omitempty"`
	Depth  int     `json:"depth"`
	Score  float64 `json:"score"`
	Model  string  `json:"model,omitempty"`
	Root   bool    `json:"root,omitempty"`
}

// Meta is n's fields but its id and image.
func (n ChainNode) Meta() ChainMeta {
	return ChainMeta{Tenant: n.Tenant, Parent: n.Parent, Depth: n.Depth, Score: n.Score, Model: n.Model, Root: n.Root}
}

// Node is the node id with these fields and image.
func (m ChainMeta) Node(id string, image []byte) ChainNode {
	return ChainNode{ID: id, Tenant: m.Tenant, Parent: m.Parent, Depth: m.Depth, Score: m.Score, Model: m.Model, Root: m.Root, Image: image}
}

// ChainStore keeps edit-chain nodes for replicas to share, for a TTL.
type ChainStore interface {
	// PutChain keeps n. Errors wrap ErrStateUnavailable.
	PutChain(ctx context.Context, n ChainNode) error
	// Chain returns the node id, false when it is unknown or expired.
	Chain(ctx context.Context, id string) (ChainNode, bool, error)
}

// capKey is a counter key from its parts, each escaped so that a tenant or
// user holding the separator cannot name another's counter.
func capKey(kind string, parts ...string) string {
	k := kind
	for _, p := range parts {
		k += ":" + url.QueryEscape(p)
	}
	return k
}

// MemCaps is this replica's daily counters (the default without a shared
// store).
type MemCaps struct {
	mu    sync.Mutex
	m     map[string]*dayCount
	spend map[string]*spendCount // budgets.go
}

type dayCount struct {
	day int64
	n   int64
}

// NewMemCaps makes empty counters.
func NewMemCaps() *MemCaps {
	return &MemCaps{m: map[string]*dayCount{}, spend: map[string]*spendCount{}}
}

var _ CapStore = (*MemCaps)(nil)

// Reserve implements CapStore.
func (c *MemCaps) Reserve(_ context.Context, day int64, counters []Counter, n int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ct := range counters {
		if c.count(ct.Key, day).n+int64(n) > ct.Limit {
			return i, nil
		}
	}
	for _, ct := range counters {
		c.count(ct.Key, day).n += int64(n)
	}
	return -1, nil
}

// Release implements CapStore.
func (c *MemCaps) Release(_ context.Context, day int64, counters []Counter, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ct := range counters {
		if d, ok := c.m[ct.Key]; ok && d.day == day {
			d.n = max(0, d.n-int64(n))
		}
	}
	return nil
}

// count is key's counter of day (a new day starts it at zero); mu held.
func (c *MemCaps) count(key string, day int64) *dayCount {
	d, ok := c.m[key]
	if !ok || d.day != day {
		d = &dayCount{day: day}
		c.m[key] = d
	}
	return d
}

// MemLimiter is GCRA in this replica's memory: the default without a
// shared store, and each replica's fallback share when the store is down.
type MemLimiter struct {
	now func() time.Time
	mu  sync.Mutex
	tat map[string]time.Time // theoretical arrival time per key
}

// NewMemLimiter makes a limiter on the clock now (nil: time.Now).
func NewMemLimiter(now func() time.Time) *MemLimiter {
	if now == nil {
		now = time.Now
	}
	return &MemLimiter{now: now, tat: map[string]time.Time{}}
}

var _ Limiter = (*MemLimiter)(nil)

// Allow implements Limiter.
func (m *MemLimiter) Allow(ctx context.Context, key string, r Rate) (bool, time.Duration, error) {
	return m.AllowN(ctx, key, r, 1)
}

// AllowN implements BatchLimiter.
func (m *MemLimiter) AllowN(_ context.Context, key string, r Rate, n int) (bool, time.Duration, error) {
	now := m.now()
	interval, tolerance := gcra(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	tat := m.tat[key]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval * time.Duration(n))
	if at := next.Add(-tolerance); at.After(now) {
		return false, max(at.Sub(now), time.Millisecond), nil
	}
	m.tat[key] = next
	return true, 0, nil
}

// gcra is r's emission interval and tolerance (Burst intervals).
func gcra(r Rate) (interval, tolerance time.Duration) {
	if r.PerSec <= 0 || math.IsInf(r.PerSec, 1) || r.PerSec > 1e9 {
		return 0, 0
	}
	interval = time.Duration(float64(time.Second) / r.PerSec)
	return interval, interval * time.Duration(max(r.Burst, 1))
}

// RateLimits applies rates through a shared Limiter when there is one,
// and through this replica's share of them (limit / Replicas) in memory
// when there is none or it cannot be reached. High rates are leased from a
// shared BatchLimiter in blocks (lease.go).
type RateLimits struct {
	shared     Limiter
	local      *MemLimiter
	replicas   int
	onFallback func(key string, err error)
	now        func() time.Time
	leases     rateLeases
}

// NewRateLimits limits through shared (nil: memory only). replicas is how
// many replicas share the limits; onFallback (may be nil) hears each
// request limited locally because shared failed.
func NewRateLimits(shared Limiter, replicas int, now func() time.Time, onFallback func(key string, err error)) *RateLimits {
	if onFallback == nil {
		onFallback = func(string, error) {}
	}
	if now == nil {
		now = time.Now
	}
	return &RateLimits{shared: shared, local: NewMemLimiter(now), replicas: replicas, onFallback: onFallback, now: now, leases: rateLeases{m: map[string]*rateLease{}}}
}

// Allow admits one request for key under r, or says how long to wait.
func (l *RateLimits) Allow(ctx context.Context, key string, r Rate) (bool, time.Duration) {
	if l.shared != nil {
		if ok, err := l.fromLease(ctx, key, r); ok || err != nil {
			if err == nil {
				return true, 0
			}
			l.onFallback(key, err)
			ok, wait, _ := l.local.Allow(ctx, key, r.share(l.replicas))
			return ok, wait
		}
		ok, wait, err := l.shared.Allow(ctx, key, r)
		if err == nil {
			return ok, wait
		}
		l.onFallback(key, err)
		r = r.share(l.replicas)
	}
	ok, wait, _ := l.local.Allow(ctx, key, r)
	return ok, wait
}
