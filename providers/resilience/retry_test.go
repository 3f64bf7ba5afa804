package resilience_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/providerstest"
	"github.com/routelab/routelab/providers/resilience"
)

func perr(kind providers.ErrorKind) *providers.Error {
	return &providers.Error{Provider: "p", Kind: kind, Message: string(kind)}
}

func TestRetry(t *testing.T) {
	unavailable, rateLimited := perr(providers.KindUnavailable), perr(providers.KindRateLimited)
	rateLimited.RetryAfter = 700 * time.Millisecond
	longRetry := perr(providers.KindRateLimited)
	longRetry.RetryAfter = time.Minute
	tests := []struct {
		name      string
		script    []error
		rand      []float64
		deadline  time.Duration // 0: none
		wantCalls int
		wantWaits []time.Duration
		wantErr   providers.ErrorKind
	}{
		{"success first", []error{nil}, []float64{0.5}, 0, 1, nil, ""},
		{"503 then success, full jitter", []error{unavailable, unavailable, nil}, []float64{0.5, 0.25}, 0, 3,
			[]time.Duration{50 * time.Millisecond, 50 * time.Millisecond}, ""},
		{"gives up after max attempts", []error{unavailable}, []float64{1}, 0, 3,
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, providers.KindUnavailable},
		{"timeouts are retried", []error{perr(providers.KindTimeout), nil}, []float64{0}, 0, 2, []time.Duration{0}, ""},
		{"honours Retry-After", []error{rateLimited, nil}, []float64{0.1}, 0, 2, []time.Duration{700 * time.Millisecond}, ""},
		{"Retry-After beyond the cap ends retries", []error{longRetry, nil}, []float64{0.1}, 0, 1, nil, providers.KindRateLimited},
		{"no retry past the deadline", []error{rateLimited, nil}, []float64{0}, 300 * time.Millisecond, 1, nil, providers.KindRateLimited},
		{"retry inside the deadline", []error{unavailable, nil}, []float64{0.5}, 300 * time.Millisecond, 2, []time.Duration{50 * time.Millisecond}, ""},
		{"content policy is final", []error{perr(providers.KindContentPolicy), nil}, []float64{0}, 0, 1, nil, providers.KindContentPolicy},
		{"bad request is final", []error{perr(providers.KindBadRequest), nil}, []float64{0}, 0, 1, nil, providers.KindBadRequest},
		{"auth is final", []error{perr(providers.KindAuth), nil}, []float64{0}, 0, 1, nil, providers.KindAuth},
		{"circuit open is final", []error{perr(providers.KindCircuitOpen), nil}, []float64{0}, 0, 1, nil, providers.KindCircuitOpen},
		{"unknown errors are final", []error{errors.New("boom"), nil}, []float64{0}, 0, 1, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			r := resilience.NewRetrier(resilience.RetryPolicy{Base: 100 * time.Millisecond, Max: time.Second},
				resilience.Env{Now: clk.Now, Sleep: clk.Sleep, Rand: seq(tt.rand...)})
			p := &providerstest.Scripted{Script: tt.script}
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, clk.Now().Add(tt.deadline))
				defer cancel()
			}
			_, err := r.Do(ctx, providers.Request{Prompt: "x"}, p.Generate)
			calls := p.Calls()
			if len(calls) != tt.wantCalls {
				t.Fatalf("Do made %d calls, want %d", len(calls), tt.wantCalls)
			}
			for i, c := range calls {
				if c.Attempt != i {
					t.Errorf("call %d has Attempt %d", i, c.Attempt)
				}
			}
			if diff := cmp.Diff(tt.wantWaits, clk.Waits()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			var pe *providers.Error
			switch {
			case tt.wantErr == "" && tt.name == "unknown errors are final":
				if err == nil || errors.As(err, &pe) {
					t.Errorf("Do = %v, want the unknown error", err)
				}
			case tt.wantErr == "":
				if err != nil {
					t.Errorf("Do = %v, want success", err)
				}
			case !errors.As(err, &pe) || pe.Kind != tt.wantErr:
				t.Errorf("Do = %v, want kind %s", err, tt.wantErr)
			}
		})
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	clk := newClock()
	r := resilience.NewRetrier(resilience.RetryPolicy{}, resilience.Env{Now: clk.Now, Sleep: clk.Sleep, Rand: seq(0.5)})
	ctx, cancel := context.WithCancel(context.Background())
	p := &providerstest.Scripted{Script: []error{perr(providers.KindUnavailable)}}
	calls := 0
	_, err := r.Do(ctx, providers.Request{}, func(ctx context.Context, req providers.Request) (providers.Result, error) {
		calls++
		cancel()
		return p.Generate(ctx, req)
	})
	if calls != 1 || err == nil {
		t.Errorf("Do after cancel: %d calls, err %v; want 1 call and the error", calls, err)
	}
}

// TestRetryBudget: with every call failing, retries are bounded by the
// budget (10 tokens to start, 0.2 earned per request), not by MaxAttempts.
func TestRetryBudget(t *testing.T) {
	clk := newClock()
	r := resilience.NewRetrier(resilience.RetryPolicy{MaxAttempts: 2, BudgetMinPerSec: 1e-12},
		resilience.Env{Now: clk.Now, Sleep: clk.Sleep, Rand: seq(0)})
	p := &providerstest.Scripted{Script: []error{perr(providers.KindUnavailable)}}
	const requests = 100
	for range requests {
		r.Do(context.Background(), providers.Request{}, p.Generate)
	}
	retries := len(p.Calls()) - requests
	// Tokens: 10 + 0.2 per request; each retry spends 1. After 100 requests at
	// most 10 + 20 = 30 retries, and the budget never starves completely.
	if retries < 25 || retries > 30 {
		t.Errorf("%d retries for %d always-failing requests, want 25..30 (the budget)", retries, requests)
	}
}

// TestRetryJitterIsBounded checks full jitter with a seeded generator: every
// wait lies in [0, cap] for its attempt and the waits are spread out.
func TestRetryJitterIsBounded(t *testing.T) {
	clk := newClock()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	r := resilience.NewRetrier(resilience.RetryPolicy{MaxAttempts: 4, Base: 100 * time.Millisecond, Max: 300 * time.Millisecond, BudgetMinPerSec: 1e6},
		resilience.Env{Now: clk.Now, Sleep: clk.Sleep, Rand: func() float64 { mu.Lock(); defer mu.Unlock(); return rng.Float64() }})
	p := &providerstest.Scripted{Script: []error{perr(providers.KindUnavailable)}}
	for range 200 {
		r.Do(context.Background(), providers.Request{}, p.Generate)
	}
	waits := clk.Waits()
	if len(waits) != 600 {
		t.Fatalf("%d waits, want 600", len(waits))
	}
	caps := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	var sum [3]time.Duration
	for i, w := range waits {
		if w < 0 || w > caps[i%3] {
			t.Fatalf("wait %d = %v, want in [0, %v]", i, w, caps[i%3])
		}
		sum[i%3] += w
	}
	for k := range 3 {
		mean := sum[k] / 200
		if lo, hi := caps[k]*4/10, caps[k]*6/10; mean < lo || mean > hi {
			t.Errorf("mean wait before retry %d = %v, want about half of %v", k+1, mean, caps[k])
		}
	}
}
