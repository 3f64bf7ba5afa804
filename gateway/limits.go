package gateway

import (
	"context"
	"strings"
	"sync/atomic"
	"time"
)

// Provider gates are per replica: behind N replicas a provider gets N
// times the concurrency (a vendor's organisation-wide rate is the shared
// vendor budget's, Config.VendorPerMinute). Daily caps are the CapStore's.

// capCounters are the daily caps a request books against: its tenant's,
// its end user's, and its end user's high-resolution renders'. Unlimited
// caps are left out.
func (g *Gateway) capCounters(r *Request) []Counter {
	var cs []Counter
	limit := int64(g.cfg.DailyCap)
	if n, ok := g.cfg.DailyCaps[r.Tenant]; ok {
		limit = int64(n)
	}
	if limit > 0 {
		cs = append(cs, Counter{Key: capKey("tenant", r.Tenant), Limit: limit})
	}
	if r.User == "" {
		return cs
	}
	if g.cfg.DailyCapUser > 0 {
		cs = append(cs, Counter{Key: capKey("user", r.Tenant, r.User), Limit: int64(g.cfg.DailyCapUser)})
	}
	if g.cfg.DailyCapHiRes > 0 && r.Width*r.Height >= g.cfg.HiResPixels {
		cs = append(cs, Counter{Key: capKey("hires", r.Tenant, r.User), Limit: int64(g.cfg.DailyCapHiRes)})
	}
	return cs
}

// capMessages say which cap a refusal hit, by counter kind.
var capMessages = map[string]string{
	"tenant": "the tenant's daily image cap is reached",
	"user":   "this user's daily image cap is reached",
	"hires":  "this user's daily cap on high-resolution images is reached",
}

// capRefusal is the refusal by b's cap counter i.
func (g *Gateway) capRefusal(b *booking, i int) *Error {
	g.m.limited.WithLabelValues("daily_cap").Inc()
	kind, _, _ := strings.Cut(b.caps[i].Key, ":")
	reset := time.Unix((b.day+1)*86400, 0).Sub(b.now)
	return &Error{Code: CodeDailyCapReached, Message: capMessages[kind], RetryAfter: reset}
}

// vendorAllows spends one request of provider's shared per-minute budget,
// when it has one.
func (g *Gateway) vendorAllows(ctx context.Context, provider string) bool {
	perMin := g.cfg.VendorPerMinute[provider]
	if perMin <= 0 {
		return true
	}
	ok, _ := g.vendor.Allow(ctx, capKey("vendor", provider), Rate{PerSec: float64(perMin) / 60, Burst: perMin})
	return ok
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
