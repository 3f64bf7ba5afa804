package gateway

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingCaps is a shared cap store in memory that counts its calls.
type countingCaps struct {
	*MemCaps
	calls int
}

func (c *countingCaps) Reserve(ctx context.Context, day int64, cs []Counter, n int) (int, error) {
	c.calls++
	return c.MemCaps.Reserve(ctx, day, cs, n)
}

func (c *countingCaps) Release(ctx context.Context, day int64, cs []Counter, n int) error {
	c.calls++
	return c.MemCaps.Release(ctx, day, cs, n)
}

// TestCapLeases: a large cap is booked in blocks (a few store calls for
// thousands of images) and its images come back to the block; two
// replicas leasing from one store admit the cap to within what their
// blocks hold, never past it; a small cap is booked exactly, per request,
// and refusing it gives the leased counter's image back.
func TestCapLeases(t *testing.T) {
	ctx := context.Background()
	const day = 20000
	t.Run("large cap in blocks", func(t *testing.T) {
		store := &countingCaps{MemCaps: NewMemCaps()}
		l := newCapLeases(store, 1)
		tenant := []Counter{{Key: "tenant:acme", Limit: 100000}} // blocks of 1000
		for i := range 2500 {
			if refused, err := l.Reserve(ctx, day, tenant, 1); err != nil || refused != -1 {
				t.Fatalf("request %d: %d, %v", i, refused, err)
			}
		}
		if store.calls != 3 || store.count("tenant:acme", day).n != 3000 {
			t.Errorf("%d store calls booking %d, want 3 blocks of 1000", store.calls, store.count("tenant:acme", day).n)
		}
		if err := l.Release(ctx, day, tenant, 1); err != nil || store.calls != 3 {
			t.Errorf("release: %v, %d store calls; want the image back in the block", err, store.calls)
		}
		if refused, _ := l.Reserve(ctx, day+1, tenant, 1); refused != -1 || store.count("tenant:acme", day+1).n != 1000 {
			t.Errorf("a new day: %d booked, want a fresh block", store.count("tenant:acme", day+1).n)
		}
	})
	t.Run("two replicas near the cap", func(t *testing.T) {
		store := NewMemCaps()
		a, b := newCapLeases(store, 2), newCapLeases(store, 2)
		tenant := []Counter{{Key: "tenant:acme", Limit: 5000}} // blocks of 25 each
		admitted := 0
		for i := range 6000 {
			l := a
			if i%3 == 0 {
				l = b
			}
			if refused, err := l.Reserve(ctx, day, tenant, 1); err != nil {
				t.Fatal(err)
			} else if refused == -1 {
				admitted++
			}
		}
		if admitted > 5000 || admitted < 5000-2*25 {
			t.Errorf("admitted %d of a cap of 5000, want the cap less at most the two blocks' 50", admitted)
		}
	})
	t.Run("small cap exact", func(t *testing.T) {
		store := &countingCaps{MemCaps: NewMemCaps()}
		l := newCapLeases(store, 1)
		cs := []Counter{{Key: "tenant:acme", Limit: 100000}, {Key: "user:acme:u1", Limit: 3}}
		var got []int
		for range 5 {
			refused, err := l.Reserve(ctx, day, cs, 1)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, refused)
		}
		if fmt.Sprint(got) != "[-1 -1 -1 1 1]" {
			t.Errorf("refusals %v, want the user's cap of 3 exact: [-1 -1 -1 1 1]", got)
		}
		if n := store.count("user:acme:u1", day).n; n != 3 {
			t.Errorf("user counter %d, want 3", n)
		}
		// the tenant's block gave back the two refused requests' images
		c := l.pools["tenant:acme"]
		if c == nil || c.left != 1000-3 {
			t.Errorf("tenant block %+v, want 997 left", c)
		}
	})
}

// gatedCaps holds a block's booking until released, and counts blocks
// asked for while one is held.
type gatedCaps struct {
	*MemCaps
	held     chan struct{} // a block booking is waiting
	release  chan struct{}
	mu       sync.Mutex
	holding  bool
	overlaps int
}

func (g *gatedCaps) Reserve(ctx context.Context, day int64, cs []Counter, n int) (int, error) {
	if n > 1 {
		g.mu.Lock()
		if g.holding {
			g.overlaps++
			g.mu.Unlock()
			return g.MemCaps.Reserve(ctx, day, cs, n)
		}
		g.holding = true
		g.mu.Unlock()
		g.held <- struct{}{}
		<-g.release
	}
	return g.MemCaps.Reserve(ctx, day, cs, n)
}

// TestCapLeasesConcurrent: while one request leases a block, the others
// that find the block empty wait for it and take from it, instead of each
// leasing one or each asking the store.
func TestCapLeasesConcurrent(t *testing.T) {
	ctx := context.Background()
	store := &gatedCaps{MemCaps: NewMemCaps(), held: make(chan struct{}), release: make(chan struct{})}
	l := newCapLeases(store, 1)
	tenant := []Counter{{Key: "tenant:acme", Limit: 100000}} // blocks of 1000
	first := make(chan int)
	go func() {
		refused, _ := l.Reserve(ctx, 20000, tenant, 1)
		first <- refused
	}()
	<-store.held // the first request is leasing the block
	others := make(chan int, 10)
	for range 10 {
		go func() {
			refused, _ := l.Reserve(ctx, 20000, tenant, 1)
			others <- refused
		}()
	}
	close(store.release)
	if refused := <-first; refused != -1 {
		t.Fatalf("the leasing request: %d", refused)
	}
	for range 10 {
		if refused := <-others; refused != -1 {
			t.Fatalf("a request while the block was leased: %d", refused)
		}
	}
	booked := store.count("tenant:acme", 20000).n
	if store.overlaps != 0 || booked != 1000 || l.pools["tenant:acme"].left != 1000-11 {
		t.Errorf("%d blocks asked while one was being leased, %d booked, %d left; want none, one block of 1000, 989",
			store.overlaps, booked, l.pools["tenant:acme"].left)
	}
}

// gatedLimiter holds a block's lease until released, and counts blocks
// asked for while one is held.
type gatedLimiter struct {
	*MemLimiter
	calls         atomic.Int64
	held, release chan struct{}
	mu            sync.Mutex
	holding       bool
	overlaps      int
}

func (g *gatedLimiter) Allow(ctx context.Context, key string, r Rate) (bool, time.Duration, error) {
	return g.AllowN(ctx, key, r, 1)
}

func (g *gatedLimiter) AllowN(ctx context.Context, key string, r Rate, n int) (bool, time.Duration, error) {
	g.calls.Add(1)
	if n > 1 {
		g.mu.Lock()
		if g.holding {
			g.overlaps++
			g.mu.Unlock()
			return g.MemLimiter.AllowN(ctx, key, r, n)
		}
		g.holding = true
		g.mu.Unlock()
		g.held <- struct{}{}
		<-g.release
	}
	return g.MemLimiter.AllowN(ctx, key, r, n)
}

// TestRateLeasesConcurrent: while one request leases a block, the others
// wait for it and spend from it, instead of each leasing a block or each
// asking the store.
func TestRateLeasesConcurrent(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	store := &gatedLimiter{MemLimiter: NewMemLimiter(clock), held: make(chan struct{}), release: make(chan struct{})}
	l := NewRateLimits(store, 1, clock, nil)
	r := Rate{PerSec: 10000, Burst: 1000}
	first := make(chan bool)
	go func() {
		ok, _ := l.Allow(context.Background(), "key:k", r)
		first <- ok
	}()
	<-store.held
	others := make(chan bool, 5) // a first block holds 8
	for range 5 {
		go func() {
			ok, _ := l.Allow(context.Background(), "key:k", r)
			others <- ok
		}()
	}
	close(store.release)
	if ok := <-first; !ok {
		t.Fatal("the leasing request was refused")
	}
	for range 5 {
		if !<-others {
			t.Fatal("a request while the block was leased was refused")
		}
	}
	if store.overlaps != 0 || store.calls.Load() != 1 {
		t.Errorf("%d blocks asked while one was leased, %d store calls; want none, 1", store.overlaps, store.calls.Load())
	}
}
