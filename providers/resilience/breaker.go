package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/routelab/routelab/providers"
)

// State is a circuit breaker's state.
type State int

const (
	Closed   State = iota // calls flow; failures are counted
	Open                  // calls fail fast until the cool-down ends
	HalfOpen              // a few probe calls decide between Closed and Open
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "unknown"
}

// BreakerConfig tunes a breaker; zero fields take the defaults.
type BreakerConfig struct {
	// Window is the rolling window over which the failure rate is measured,
	// in Buckets buckets. Defaults 10 s, 10.
	Window  time.Duration
	Buckets int
	// MinRequests in the window before the rate can trip the breaker. Default 20.
	MinRequests int
	// FailureRate at or above which the breaker opens. Default 0.5.
	FailureRate float64
	// OpenFor is the cool-down before probing. Default 5 s.
	OpenFor time.Duration
	// Probes is how many calls half-open admits at once, and how many
	// successes in a row close it again. Default 3.
	Probes int
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.Buckets <= 0 {
		c.Buckets = 10
	}
	if c.MinRequests <= 0 {
		c.MinRequests = 20
	}
	if c.FailureRate <= 0 {
		c.FailureRate = 0.5
	}
	if c.OpenFor <= 0 {
		c.OpenFor = 5 * time.Second
	}
	if c.Probes <= 0 {
		c.Probes = 3
	}
	return c
}

// ErrOpen is returned (as the Message of a KindCircuitOpen *providers.Error
// from Wrap, bare from Allow) when the breaker refuses a call.
var ErrOpen = errors.New("circuit open")

// Breaker is a circuit breaker for one upstream. Safe for concurrent use.
type Breaker struct {
	name     string
	cfg      BreakerConfig
	now      func() time.Time
	onChange func(name string, from, to State)

	mu       sync.Mutex
	state    State
	openedAt time.Time
	buckets  []bucket
	inFlight int // probes admitted in half-open
	okProbes int // consecutive probe successes
}

type bucket struct {
	epoch          int64 // which bucket-length slot of time it counts
	total, failure int
}

// NewBreaker returns a closed breaker. onChange, when not nil, is called on
// every state change with the breaker's lock released (for logs and metrics).
func NewBreaker(name string, cfg BreakerConfig, now func() time.Time, onChange func(name string, from, to State)) *Breaker {
	cfg = cfg.withDefaults()
	if now == nil {
		now = time.Now
	}
	return &Breaker{name: name, cfg: cfg, now: now, onChange: onChange, buckets: make([]bucket, cfg.Buckets)}
}

// Name is the upstream the breaker guards.
func (b *Breaker) Name() string { return b.name }

// Allow asks to make a call. It returns ErrOpen when the breaker is open, or
// half-open with all probes in flight; otherwise the caller must report the
// call's result with done (exactly once).
func (b *Breaker) Allow() (done func(err error), err error) {
	b.mu.Lock()
	from := b.advance()
	switch b.state {
	case Open:
		b.mu.Unlock()
		b.notify(from, Open)
		return nil, ErrOpen
	case HalfOpen:
		if b.inFlight >= b.cfg.Probes {
			b.mu.Unlock()
			b.notify(from, HalfOpen)
			return nil, ErrOpen
		}
		b.inFlight++
		b.mu.Unlock()
		b.notify(from, HalfOpen)
		return b.doneFunc(true), nil
	}
	b.mu.Unlock()
	return b.doneFunc(false), nil
}

func (b *Breaker) doneFunc(probe bool) func(error) {
	var once sync.Once
	return func(err error) { once.Do(func() { b.record(probe, err) }) }
}

func (b *Breaker) record(probe bool, err error) {
	failed, counts := classify(err)
	b.mu.Lock()
	from := b.state
	switch {
	case probe && b.state == HalfOpen:
		b.inFlight--
		switch {
		case !counts:
		case failed:
			b.trip()
		default:
			b.okProbes++
			if b.okProbes >= b.cfg.Probes {
				b.state = Closed
				clear(b.buckets)
			}
		}
	case !probe && b.state == Closed && counts:
		bk := b.bucketAt(b.now())
		bk.total++
		if failed {
			bk.failure++
			if total, fails := b.window(); total >= b.cfg.MinRequests && float64(fails) >= b.cfg.FailureRate*float64(total) {
				b.trip()
			}
		}
	}
	to := b.state
	b.mu.Unlock()
	b.notify(from, to)
}

// trip opens the breaker; the caller holds the lock.
func (b *Breaker) trip() {
	b.state, b.openedAt, b.okProbes = Open, b.now(), 0
}

// advance moves Open to HalfOpen once the cool-down has passed, returning the
// state before; the caller holds the lock.
func (b *Breaker) advance() State {
	from := b.state
	if b.state == Open && !b.now().Before(b.openedAt.Add(b.cfg.OpenFor)) {
		b.state, b.inFlight, b.okProbes = HalfOpen, 0, 0
	}
	return from
}

func (b *Breaker) notify(from, to State) {
	if from != to && b.onChange != nil {
		b.onChange(b.name, from, to)
	}
}

func (b *Breaker) bucketLen() time.Duration { return b.cfg.Window / time.Duration(b.cfg.Buckets) }

func (b *Breaker) bucketAt(t time.Time) *bucket {
	epoch := t.UnixNano() / int64(b.bucketLen())
	bk := &b.buckets[epoch%int64(len(b.buckets))]
	if bk.epoch != epoch {
		*bk = bucket{epoch: epoch}
	}
	return bk
}

// window sums the buckets still inside the rolling window.
func (b *Breaker) window() (total, failures int) {
	now := b.now().UnixNano() / int64(b.bucketLen())
	for _, bk := range b.buckets {
		if now-bk.epoch < int64(len(b.buckets)) {
			total += bk.total
			failures += bk.failure
		}
	}
	return total, failures
}

// Status is a breaker's state for health snapshots and metrics.
type Status struct {
	Name        string  `json:"name"`
	State       string  `json:"state"`
	Usable      bool    `json:"usable"`
	Requests    int     `json:"requests"` // in the rolling window
	Failures    int     `json:"failures"`
	FailureRate float64 `json:"failure_rate"`
	// RetryAt is when an open breaker will admit probes (zero otherwise).
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// Usable reports whether the breaker admits calls now: Status().Usable
// without the rolling-window sums, for the router's check of every
// candidate on every request.
func (b *Breaker) Usable() bool {
	b.mu.Lock()
	from := b.advance()
	ok := b.usable()
	to := b.state
	b.mu.Unlock()
	b.notify(from, to)
	return ok
}

// usable: closed, or half-open with a probe slot free. b.mu is held.
func (b *Breaker) usable() bool {
	return b.state == Closed || (b.state == HalfOpen && b.inFlight < b.cfg.Probes)
}

// Status reports the breaker's current state.
func (b *Breaker) Status() Status {
	b.mu.Lock()
	from := b.advance()
	s := Status{Name: b.name, State: b.state.String()}
	s.Requests, s.Failures = b.window()
	if s.Requests > 0 {
		s.FailureRate = float64(s.Failures) / float64(s.Requests)
	}
	s.Usable = b.usable()
	if b.state == Open {
		s.RetryAt = b.openedAt.Add(b.cfg.OpenFor)
	}
	to := b.state
	b.mu.Unlock()
	b.notify(from, to)
	return s
}

// classify says whether err is an upstream failure and whether it counts at
// all. Successes and refusals that prove the upstream works (content policy,
// bad request, a model limit) count as successes; the caller giving up (context.Canceled)
// does not count; outages, timeouts, rate limits, rejected credentials and
// unknown errors are failures.
func classify(err error) (failed, counts bool) {
	if err == nil {
		return false, true
	}
	var pe *providers.Error
	if errors.As(err, &pe) {
		switch pe.Kind {
		case providers.KindContentPolicy, providers.KindBadRequest, providers.KindUnsupported:
			return false, true
		case providers.KindCircuitOpen:
			return false, false
		}
		return true, true
	}
	if errors.Is(err, context.Canceled) {
		return false, false
	}
	return true, true
}

func randFloat() float64 { return rand.Float64() }
