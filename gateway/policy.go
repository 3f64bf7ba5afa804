package gateway

import (
	"sync/atomic"

	"github.com/routelab/routelab/router"
)

// Policy decides a request's route. Decide is pure and fast (microseconds)
// and never fails: with no eligible model the decision's Model is "".
type Policy interface {
	Decide(req router.Request) router.Decision
}

// LivePolicy routes with whichever policy is live. Store swaps it
// atomically: a request decides under one whole policy, old or new.
type LivePolicy struct {
	p      atomic.Pointer[router.Policy]
	health router.Health
}

var _ Policy = (*LivePolicy)(nil)

// NewLivePolicy routes with p (nil until a policy is stored) under the
// providers' health (nil: all usable).
func NewLivePolicy(p *router.Policy, health router.Health) *LivePolicy {
	l := &LivePolicy{health: health}
	if p != nil {
		l.p.Store(p)
	}
	return l
}

// Store makes p live. p must be compiled (router.ParsePolicy does it).
func (l *LivePolicy) Store(p *router.Policy) { l.p.Store(p) }

// Policy returns the live policy, nil before the first.
func (l *LivePolicy) Policy() *router.Policy { return l.p.Load() }

// Decide routes req under the live policy; before the first policy, no
// model.
func (l *LivePolicy) Decide(req router.Request) router.Decision {
	p := l.p.Load()
	if p == nil {
		return router.Decision{}
	}
	return router.Decide(req, p, l.health)
}
