// Package resilience wraps providers with what keeps serving up when
// upstreams fail: retries with exponential backoff and full jitter inside the
// request deadline, a retry budget against retry storms, and a circuit
// breaker per upstream whose states make up the Health the router consults.
// Time, sleeping and randomness are injected so tests are deterministic.
package resilience

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/internal/upstream"
)

// RetryPolicy bounds retries; zero fields take the defaults.
type RetryPolicy struct {
	// MaxAttempts counts the first call. Default 3.
	MaxAttempts int
	// Base and Max shape the backoff: the wait before retry n (n = 1, 2, ...)
	// is uniform in [0, min(Max, Base·2^(n-1))] ("full jitter", AWS
	// Architecture Blog, "Exponential Backoff And Jitter"). Defaults 100 ms, 2 s.
	Base, Max time.Duration
	// MaxRetryAfter caps how long a 429's Retry-After may make us wait; a
	// longer one ends the retries (another model is a better bet). Default 5 s.
	MaxRetryAfter time.Duration
	// BudgetRatio and BudgetMinPerSec bound retries across all requests: each
	// first attempt earns BudgetRatio tokens, each retry spends one, and
	// BudgetMinPerSec tokens accrue per second regardless (Finagle's
	// RetryBudget). Defaults 0.2 and 10; the bucket holds at most 100 tokens.
	BudgetRatio     float64
	BudgetMinPerSec float64
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 3
	}
	if p.Base <= 0 {
		p.Base = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 2 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 5 * time.Second
	}
	if p.BudgetRatio <= 0 {
		p.BudgetRatio = 0.2
	}
	if p.BudgetMinPerSec <= 0 {
		p.BudgetMinPerSec = 10
	}
	return p
}

// Env is the outside world resilience uses: a clock, a sleeper and a source
// of uniform [0,1) numbers. Zero fields use the real ones.
type Env struct {
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error // returns ctx.Err() when ctx ends first
	Rand  func() float64                                   // must be safe for concurrent use
}

func (e Env) withDefaults() Env {
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Sleep == nil {
		e.Sleep = upstream.Sleep
	}
	if e.Rand == nil {
		e.Rand = randFloat
	}
	return e
}

// Retrier retries retryable provider errors. It is safe for concurrent use;
// share one per process so the budget is shared.
type Retrier struct {
	p   RetryPolicy
	env Env

	mu      sync.Mutex
	tokens  float64
	refills time.Time
}

// NewRetrier returns a Retrier with p (zero fields take the defaults).
func NewRetrier(p RetryPolicy, env Env) *Retrier {
	p = p.withDefaults()
	env = env.withDefaults()
	return &Retrier{p: p, env: env, tokens: budgetCap / 10, refills: env.Now()}
}

const budgetCap = 100

// Call is one attempt at a provider.
type Call func(ctx context.Context, req providers.Request) (providers.Result, error)

// Do calls call, setting req.Attempt, and retries while the error is
// retryable (providers.Error.Retryable), attempts remain, the budget allows,
// and the wait ends before ctx's deadline. It never retries final errors
// (content policy, bad request, auth, circuit open). The wait honours a 429's
// Retry-After when it is longer than the jittered backoff. It returns the last
// error as is.
func (r *Retrier) Do(ctx context.Context, req providers.Request, call Call) (providers.Result, error) {
	r.earn()
	for attempt := 0; ; attempt++ {
		req.Attempt = attempt
		res, err := call(ctx, req)
		if err == nil || attempt+1 >= r.p.MaxAttempts || ctx.Err() != nil {
			return res, err
		}
		var pe *providers.Error
		if !errors.As(err, &pe) || !pe.Retryable() {
			return res, err
		}
		wait := time.Duration(r.env.Rand() * float64(r.backoff(attempt+1)))
		if pe.RetryAfter > 0 {
			if pe.RetryAfter > r.p.MaxRetryAfter {
				return res, err
			}
			wait = max(wait, pe.RetryAfter)
		}
		if dl, ok := ctx.Deadline(); ok && !r.env.Now().Add(wait).Before(dl) {
			return res, err // the wait would outlive the request
		}
		if !r.spend() {
			return res, err
		}
		if r.env.Sleep(ctx, wait) != nil {
			return res, err
		}
	}
}

// backoff is the cap of the wait before retry n.
func (r *Retrier) backoff(n int) time.Duration {
	d := r.p.Base
	for i := 1; i < n && d < r.p.Max; i++ {
		d *= 2
	}
	return min(d, r.p.Max)
}

func (r *Retrier) earn() {
	r.mu.Lock()
	r.refill()
	r.tokens = min(r.tokens+r.p.BudgetRatio, budgetCap)
	r.mu.Unlock()
}

func (r *Retrier) spend() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refill()
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

func (r *Retrier) refill() {
	now := r.env.Now()
	if el := now.Sub(r.refills); el > 0 {
		r.tokens = min(r.tokens+el.Seconds()*r.p.BudgetMinPerSec, budgetCap)
		r.refills = now
	}
}
