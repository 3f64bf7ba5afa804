package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/providerstest"
	"github.com/routelab/routelab/providers/resilience"
)

func MustAllow(t *testing.T, b *resilience.Breaker) func(error) {
	t.Helper()
	done, err := b.Allow()
	if err != nil {
		t.Fatalf("Allow() = %v, want a call allowed (state %s)", err, b.Status().State)
	}
	return done
}

func call(t *testing.T, b *resilience.Breaker, err error) {
	t.Helper()
	MustAllow(t, b)(err)
}

type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) record(name string, from, to resilience.State) {
	tr.mu.Lock()
	tr.got = append(tr.got, fmt.Sprintf("%s:%s->%s", name, from, to))
	tr.mu.Unlock()
}

func TestBreakerLifecycle(t *testing.T) {
	clk := newClock()
	tr := &transitions{}
	b := resilience.NewBreaker("sim-fast", resilience.BreakerConfig{}, clk.Now, tr.record)
	fail := perr(providers.KindUnavailable)

	for range 10 {
		call(t, b, nil)
	}
	for range 9 {
		call(t, b, fail)
	}
	if s := statusOf(t, b); s.State != "closed" || s.Requests != 19 || s.Failures != 9 {
		t.Fatalf("after 10 ok and 9 failures: %+v, want closed 19/9", s)
	}
	call(t, b, fail) // 10 of 20: rate 0.5 reaches the threshold
	if s := statusOf(t, b); s.State != "open" || s.Usable || !s.RetryAt.Equal(clk.Now().Add(5*time.Second)) {
		t.Fatalf("after 10 of 20 failures: %+v, want open until +5s", s)
	}
	if _, err := b.Allow(); !errors.Is(err, resilience.ErrOpen) {
		t.Fatalf("Allow() while open = %v, want ErrOpen", err)
	}

	clk.Advance(5 * time.Second)
	if s := statusOf(t, b); s.State != "half_open" || !s.Usable {
		t.Fatalf("open time over: %+v, want half_open and usable (probes free)", s)
	}
	probes := []func(error){MustAllow(t, b), MustAllow(t, b), MustAllow(t, b)}
	if _, err := b.Allow(); !errors.Is(err, resilience.ErrOpen) {
		t.Fatalf("4th Allow() while half-open = %v, want ErrOpen (3 probes)", err)
	}
	if s := statusOf(t, b); s.State != "half_open" || s.Usable {
		t.Fatalf("with all probes in flight: %+v, want half_open, not usable", s)
	}
	probes[0](nil)
	probes[1](fail) // one probe fails: open again
	probes[2](nil)  // late success of a probe does not close it
	if s := statusOf(t, b); s.State != "open" {
		t.Fatalf("after a failed probe: %+v, want open", s)
	}

	clk.Advance(5 * time.Second)
	for range 3 {
		call(t, b, nil)
	}
	if s := statusOf(t, b); s.State != "closed" || s.Requests != 0 {
		t.Fatalf("after 3 good probes: %+v, want closed with a fresh window", s)
	}
	want := []string{
		"sim-fast:closed->open", "sim-fast:open->half_open", "sim-fast:half_open->open",
		"sim-fast:open->half_open", "sim-fast:half_open->closed",
	}
	if diff := cmp.Diff(want, tr.got); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
}

// statusOf is b.Status(), checking that b.Usable (the router's cheap
// check) agrees with it.
func statusOf(t *testing.T, b *resilience.Breaker) resilience.Status {
	t.Helper()
	u := b.Usable()
	s := b.Status()
	if u != s.Usable {
		t.Errorf("Usable() = %v, Status().Usable = %v in state %s", u, s.Usable, s.State)
	}
	return s
}

func TestBreakerCounts(t *testing.T) {
	tests := []struct {
		name     string
		give     error
		wantOpen bool
	}{
		{"unavailable", perr(providers.KindUnavailable), true},
		{"timeout", perr(providers.KindTimeout), true},
		{"rate limited", perr(providers.KindRateLimited), true},
		{"auth", perr(providers.KindAuth), true},
		{"unknown error", errors.New("connection reset"), true},
		{"content policy proves the upstream works", perr(providers.KindContentPolicy), false},
		{"bad request proves the upstream works", perr(providers.KindBadRequest), false},
		{"caller cancelled", context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := resilience.NewBreaker("x", resilience.BreakerConfig{}, newClock().Now, nil)
			for range 20 { // MinRequests
				call(t, b, tt.give)
			}
			if got := b.Status().State == "open"; got != tt.wantOpen {
				t.Errorf("20 × %v: open = %v, want %v", tt.give, got, tt.wantOpen)
			}
		})
	}
}

func TestBreakerWindowForgets(t *testing.T) {
	clk := newClock()
	b := resilience.NewBreaker("x", resilience.BreakerConfig{Window: 10 * time.Second, Buckets: 10}, clk.Now, nil)
	fail := perr(providers.KindUnavailable)
	for range 15 {
		call(t, b, fail)
	}
	clk.Advance(11 * time.Second) // the failures leave the window
	for range 10 {
		call(t, b, nil)
	}
	for range 9 {
		call(t, b, fail)
	}
	if s := b.Status(); s.State != "closed" || s.Requests != 19 || s.Failures != 9 {
		t.Errorf("old failures out of the window: %+v, want closed with 19 requests, 9 failures", s)
	}
	clk.Advance(500 * time.Millisecond) // same window, next bucket
	call(t, b, fail)
	if s := b.Status(); s.State != "open" {
		t.Errorf("10 of 20 in the window: %+v, want open", s)
	}
}

func TestBreakersHealth(t *testing.T) {
	clk := newClock()
	set := resilience.NewBreakers(resilience.BreakerConfig{MinRequests: 5}, clk.Now, nil)
	if !set.Usable("sim", "sim-fast") {
		t.Fatal("an upstream never called is not usable")
	}
	for range 5 {
		call(t, set.For("sim-fast"), perr(providers.KindUnavailable))
	}
	if set.Usable("sim", "sim-fast") || !set.Usable("sim", "sim-lite") {
		t.Errorf("model breaker open: Usable(sim-fast) = %v, Usable(sim-lite) = %v; want false, true",
			set.Usable("sim", "sim-fast"), set.Usable("sim", "sim-lite"))
	}
	for range 5 {
		call(t, set.For("openai"), perr(providers.KindAuth))
	}
	if set.Usable("openai", "gpt-image-1") {
		t.Error("provider breaker open: a model of that provider is usable")
	}
	snap := set.Snapshot()
	if len(snap) != 2 || snap[0].Name != "openai" || snap[0].State != "open" || snap[1].Name != "sim-fast" || snap[1].Usable {
		t.Errorf("Snapshot() = %+v", snap)
	}
	clk.Advance(5 * time.Second)
	if !set.Usable("sim", "sim-fast") {
		t.Error("after the cool-down the half-open breaker should admit probes")
	}
}

func TestWrap(t *testing.T) {
	clk := newClock()
	b := resilience.NewBreaker("m", resilience.BreakerConfig{MinRequests: 4}, clk.Now, nil)
	r := resilience.NewRetrier(resilience.RetryPolicy{MaxAttempts: 3}, resilience.Env{Now: clk.Now, Sleep: clk.Sleep, Rand: seq(0)})
	up := &providerstest.Scripted{ProviderName: "up", Script: []error{perr(providers.KindUnavailable)}}
	w := resilience.Wrap(up, b, r)
	if w.Name() != "up" {
		t.Errorf("Name() = %q", w.Name())
	}
	_, err := w.Generate(context.Background(), providers.Request{})
	if !providers.IsRetryable(err) || len(up.Calls()) != 3 {
		t.Fatalf("first Generate = %v after %d calls, want the 503 after 3", err, len(up.Calls()))
	}
	// The 4th failure trips the breaker; the retry after it is refused and not retried.
	_, err = w.Generate(context.Background(), providers.Request{})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindCircuitOpen || pe.Retryable() {
		t.Fatalf("Generate once tripped = %v, want a non-retryable circuit_open", err)
	}
	if n := len(up.Calls()); n != 4 {
		t.Errorf("upstream called %d times, want 4 (no call while open)", n)
	}
}

// TestWrapConcurrent exercises one breaker and retrier from many goroutines
// (run with -race): every upstream call is accounted for.
func TestWrapConcurrent(t *testing.T) {
	set := resilience.NewBreakers(resilience.BreakerConfig{}, nil, nil)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(3, 4))
	r := resilience.NewRetrier(resilience.RetryPolicy{}, resilience.Env{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Rand: func() float64 { mu.Lock(); defer mu.Unlock(); return rng.Float64() }})
	up := &providerstest.Scripted{Script: []error{nil, perr(providers.KindUnavailable), nil, nil}}
	w := resilience.Wrap(up, set.For("m"), r)
	var wg sync.WaitGroup
	var okN, errN int64
	var cm sync.Mutex
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				_, err := w.Generate(context.Background(), providers.Request{})
				cm.Lock()
				if err == nil {
					okN++
				} else {
					errN++
				}
				cm.Unlock()
				set.Usable("p", "m")
			}
		}()
	}
	wg.Wait()
	if okN+errN != 1600 || okN == 0 {
		t.Errorf("ok %d + errors %d, want 1600 with some ok", okN, errN)
	}
	if s := set.For("m").Status(); s.State != "closed" {
		t.Errorf("breaker %+v, want closed (only one early failure)", s)
	}
}
