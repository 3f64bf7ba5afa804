package gateway

import (
	"fmt"
	"maps"
	"sync"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/router"
)

// Assigner assigns a request's unit to running experiments. Assign is pure
// and fast; overrides change how the request is served in that arm.
type Assigner interface {
	Assign(req router.Request) ([]events.Arm, Overrides)
}

// Overrides are an experiment arm's changes to serving.
type Overrides struct {
	Policy Policy // serve this arm with another policy; nil = the live one
	Model  string // pin a model; "" = route
	// Shadow mirrors the request to a shadow experiment's candidate after
	// the live response; nil: no mirror.
	Shadow *ShadowPlan
}

// ExperimentAssigner is the Assigner of the serving path: it asks the
// experiments registry's current assigner which arms a request falls into,
// records every arm with its assignment inputs for the decision event, and
// turns the arms' overrides into serving overrides (a model pin, or a policy
// for another version or other thresholds/epsilon).
type ExperimentAssigner struct {
	current func() *experiments.Assigner
	routers *ArmRouters
}

var _ Assigner = (*ExperimentAssigner)(nil)

// NewExperimentAssigner assigns with whatever current returns (e.g.
// Registry.Assigner, swapped atomically on every control-plane change);
// routers may be nil when no arm changes the policy.
func NewExperimentAssigner(current func() *experiments.Assigner, routers *ArmRouters) *ExperimentAssigner {
	return &ExperimentAssigner{current: current, routers: routers}
}

// Assign implements Assigner. The first arm (in layer order) that pins a
// model or changes the policy wins; layers are meant to change different
// things.
func (a *ExperimentAssigner) Assign(req router.Request) ([]events.Arm, Overrides) {
	var buf [4]experiments.Assignment
	got := a.current().Assign(buf[:0], experiments.SubjectOf(&req))
	if len(got) == 0 {
		return nil, Overrides{}
	}
	arms := make([]events.Arm, 0, len(got))
	var ov Overrides
	for _, g := range got {
		arm := events.Arm{Experiment: g.Experiment, Arm: g.Arm, Layer: g.Layer, Phase: g.Phase, Unit: g.Unit, Bucket: g.Bucket,
			Propensity: g.Propensity, Stratum: g.Stratum}
		if g.Shadow {
			// served live as if in no experiment; the mirror carries the arm
			if ov.Shadow == nil {
				ov.Shadow = a.shadowPlan(arm, g)
			}
			continue
		}
		arms = append(arms, arm)
		o := g.Overrides
		if o == nil {
			continue
		}
		if ov.Model == "" && o.Model != "" {
			ov.Model = o.Model
		}
		if ov.Policy == nil && a.routers != nil && (o.PolicyVersion != "" || len(o.Thresholds) > 0 || o.Epsilon != nil) {
			if rt, err := a.routers.For(o); err == nil {
				ov.Policy = rt
			}
		}
	}
	if len(arms) == 0 {
		arms = nil
	}
	return arms, ov
}

// shadowPlan is the mirror of a shadow assignment: the candidate's pin or
// policy.
func (a *ExperimentAssigner) shadowPlan(arm events.Arm, g experiments.Assignment) *ShadowPlan {
	p := &ShadowPlan{Arm: arm, CapUSD: g.ShadowCapUSD}
	o := g.Overrides
	if o == nil {
		return p
	}
	p.Model = o.Model
	if a.routers != nil && (o.PolicyVersion != "" || len(o.Thresholds) > 0 || o.Epsilon != nil) {
		rt, err := a.routers.For(o)
		if err != nil {
			return nil // the candidate's policy is unknown here: no mirror
		}
		p.Policy = rt
	}
	return p
}

// ArmRouters builds and caches the Policy of each arm that changes the
// policy: the policy the arm names (Lookup by version; "" = the live one)
// with the arm's thresholds and epsilon applied.
type ArmRouters struct {
	live   *LivePolicy
	lookup func(version string) (*router.Policy, bool)
	health router.Health

	mu    sync.Mutex
	cache map[armKey]Policy
}

type armKey struct {
	ov   *experiments.Overrides // stable for the lifetime of one assigner
	base *router.Policy
}

// NewArmRouters routes arms from live (for arms without a policy version)
// or from the policy lookup finds by version.
func NewArmRouters(live *LivePolicy, lookup func(version string) (*router.Policy, bool), health router.Health) *ArmRouters {
	return &ArmRouters{live: live, lookup: lookup, health: health, cache: map[armKey]Policy{}}
}

// For returns the Policy for an arm's overrides.
func (r *ArmRouters) For(o *experiments.Overrides) (Policy, error) {
	var base *router.Policy
	if o.PolicyVersion == "" {
		base = r.live.Policy()
	} else if r.lookup != nil {
		base, _ = r.lookup(o.PolicyVersion)
	}
	if base == nil {
		return nil, fmt.Errorf("no policy %q", o.PolicyVersion)
	}
	k := armKey{o, base}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt, ok := r.cache[k]; ok {
		return rt, nil
	}
	p := base
	if len(o.Thresholds) > 0 || o.Epsilon != nil {
		q := *base
		q.Thresholds = maps.Clone(base.Thresholds)
		if q.Thresholds == nil {
			q.Thresholds = map[router.Tier]float64{}
		}
		for t, v := range o.Thresholds {
			q.Thresholds[router.Tier(t)] = v
		}
		if o.Epsilon != nil {
			q.Epsilon = *o.Epsilon
		}
		if err := q.Compile(); err != nil {
			return nil, err
		}
		p = &q
	}
	if len(r.cache) > 1024 { // old assigners' arms
		clear(r.cache)
	}
	rt := NewLivePolicy(p, r.health)
	r.cache[k] = rt
	return rt, nil
}
