package resilience

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/router"
)

// Breakers holds one breaker per upstream key and answers the router's
// health question. Safe for concurrent use.
type Breakers struct {
	cfg      BreakerConfig
	now      func() time.Time
	onChange func(name string, from, to State)

	mu sync.RWMutex
	m  map[string]*Breaker
}

var _ router.Health = (*Breakers)(nil)

// NewBreakers returns an empty set; breakers are made on first use with cfg.
// now and onChange are passed to every breaker (see NewBreaker).
func NewBreakers(cfg BreakerConfig, now func() time.Time, onChange func(name string, from, to State)) *Breakers {
	return &Breakers{cfg: cfg, now: now, onChange: onChange, m: map[string]*Breaker{}}
}

// For returns the breaker for key, creating it closed.
func (s *Breakers) For(key string) *Breaker {
	s.mu.RLock()
	b, ok := s.m[key]
	s.mu.RUnlock()
	if ok {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok = s.m[key]; !ok {
		b = NewBreaker(key, s.cfg, s.now, s.onChange)
		s.m[key] = b
	}
	return b
}

// Usable implements router.Health: a model is usable unless the breaker
// for the model, or for its provider as a whole, refuses calls. Upstreams
// never called are usable.
func (s *Breakers) Usable(provider, model string) bool {
	s.mu.RLock()
	bm, okm := s.m[model]
	bp, okp := s.m[provider]
	s.mu.RUnlock()
	return (!okm || bm.Usable()) && (!okp || bp.Usable())
}

// Snapshot lists every breaker's status, by name.
func (s *Breakers) Snapshot() []Status {
	s.mu.RLock()
	bs := make([]*Breaker, 0, len(s.m))
	for _, b := range s.m {
		bs = append(bs, b)
	}
	s.mu.RUnlock()
	out := make([]Status, len(bs))
	for i, b := range bs {
		out[i] = b.Status()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Provider is a provider behind a breaker and a retrier.
type Provider struct {
	p       providers.Provider
	breaker *Breaker
	retrier *Retrier
}

var _ providers.Provider = (*Provider)(nil)

// Wrap puts p behind b (every attempt asks b first and reports to it) and r
// (retries; nil for none). A refused attempt fails with a KindCircuitOpen
// *providers.Error, which is not retried: the caller moves on to the next
// model at once.
func Wrap(p providers.Provider, b *Breaker, r *Retrier) *Provider {
	return &Provider{p: p, breaker: b, retrier: r}
}

// Name is the wrapped provider's name.
func (w *Provider) Name() string { return w.p.Name() }

// Generate calls the wrapped provider through the breaker, with retries.
func (w *Provider) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	if w.retrier == nil {
		return w.once(ctx, req)
	}
	return w.retrier.Do(ctx, req, w.once)
}

func (w *Provider) once(ctx context.Context, req providers.Request) (providers.Result, error) {
	done, err := w.breaker.Allow()
	if err != nil {
		return providers.Result{}, &providers.Error{Provider: w.p.Name(), Kind: providers.KindCircuitOpen, Status: 503, Message: ErrOpen.Error() + " for " + w.breaker.Name()}
	}
	res, err := w.p.Generate(ctx, req)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		done(context.Canceled) // the caller left; says nothing about the upstream
	} else {
		done(err)
	}
	return res, err
}
