package lab

import (
	"context"
	"sync"
	"time"
)

// Clock is virtual time: Sleep advances it instead of waiting, so a
// simulated model's 12 s answer costs no wall time, and every reader (the
// gateway's latency, the retrier's backoff, the breakers, the daily caps)
// sees the same simulated seconds.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts virtual time at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves virtual time on by d.
func (c *Clock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Sleep advances virtual time by d, unless ctx is done, or d would pass
// ctx's deadline: then the clock stops at the deadline and Sleep returns
// the context's error, as a real sleep cut short would.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		if end := c.now.Add(d); end.After(dl) {
			c.now = dl
			return context.DeadlineExceeded
		}
		c.now = c.now.Add(max(d, 0))
		return nil
	}
	c.Advance(d)
	return nil
}
