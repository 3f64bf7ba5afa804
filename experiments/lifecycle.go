package experiments

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Allocate reserves s's bucket range in its layer: the first gap, in bucket
// order, at least LayerShare × Buckets wide among the ranges of the other
// experiments of the layer that are not stopped. A range given in the spec
// is kept if it is free. Ranges of running experiments never move, so
// splitting a layer later reshuffles nobody.
func Allocate(s *Spec, others []Spec) error {
	var taken []Range
	for _, o := range others {
		if o.ID == s.ID || o.Layer != s.Layer || o.Status == StatusStopped || o.Buckets == nil {
			continue
		}
		taken = append(taken, *o.Buckets)
	}
	if s.Buckets != nil {
		for _, t := range taken {
			if t.overlaps(*s.Buckets) {
				return invalid("layer_full", "buckets", "buckets %d-%d overlap another experiment in layer %q", s.Buckets.Start, s.Buckets.End, s.Layer)
			}
		}
		return nil
	}
	width := int(math.Round(s.LayerShare * Buckets))
	if width < 1 {
		width = 1
	}
	slices.SortFunc(taken, func(a, b Range) int { return a.Start - b.Start })
	at := 0
	for _, t := range taken {
		if t.Start-at >= width {
			break
		}
		at = max(at, t.End)
	}
	if Buckets-at < width {
		return invalid("layer_full", "layer_share", "layer %q has no free range of %d buckets", s.Layer, width)
	}
	s.Buckets = &Range{Start: at, End: at + width}
	return nil
}

// Transition moves s to status to. Allowed: draft→running, running↔paused,
// draft/running/paused→stopped. Starting a canary starts its first step.
func Transition(s *Spec, to Status, reason string, now time.Time) error {
	ok := false
	switch s.Status {
	case StatusDraft:
		ok = to == StatusRunning || to == StatusStopped
	case StatusRunning:
		ok = to == StatusPaused || to == StatusStopped
	case StatusPaused:
		ok = to == StatusRunning || to == StatusStopped
	}
	if !ok {
		return invalid("invalid_transition", "status", "cannot go from %s to %s", s.Status, to)
	}
	ms := now.UnixMilli()
	if s.Status == StatusDraft && to == StatusRunning {
		s.PhaseStarted = ms
		if s.Ramp != nil {
			s.Ramp.StepStartedMS = ms
			s.Traffic = s.Ramp.Steps[s.Ramp.Step]
		}
	}
	if to == StatusStopped {
		s.StopReason = reason
	}
	s.Status = to
	s.UpdatedMS = ms
	s.Revision++
	return nil
}

// SetTraffic changes the exposure of a running experiment (a manual ramp).
// Units already in keep their arm; it does not start a new phase.
func SetTraffic(s *Spec, traffic float64, now time.Time) error {
	if !inUnit(traffic) {
		return invalid("out_of_range", "traffic", "traffic must be in (0, 1]")
	}
	if s.Status == StatusStopped {
		return invalid("invalid_transition", "status", "experiment is stopped")
	}
	s.Traffic = traffic
	if s.Ramp != nil {
		// keep the ramp consistent: the step is the last one not above traffic
		step := 0
		for i, st := range s.Ramp.Steps {
			if st <= traffic+1e-12 {
				step = i
			}
		}
		s.Ramp.Step = step
		s.Ramp.StepStartedMS = now.UnixMilli()
		s.Ramp.Done = step == len(s.Ramp.Steps)-1 && traffic >= s.Ramp.Steps[step]
	}
	s.UpdatedMS = now.UnixMilli()
	s.Revision++
	return nil
}

// Update applies an edited spec to the current one. Identity, bucket range,
// status and history are kept from cur; a change of arms, weights, control,
// targeting or unit starts a new analysis phase (with a fresh arm salt) when
// the experiment has already run, rather than silently mixing populations.
func Update(cur Spec, next Spec, now time.Time) (Spec, error) {
	next.ID, next.Salt, next.Buckets = cur.ID, cur.Salt, cur.Buckets
	next.Status, next.CreatedMS, next.Revision = cur.Status, cur.CreatedMS, cur.Revision
	next.Phase, next.PhaseStarted, next.StopReason, next.RolledBack = cur.Phase, cur.PhaseStarted, cur.StopReason, cur.RolledBack
	if next.Layer != cur.Layer || next.LayerShare != cur.LayerShare {
		return Spec{}, invalid("immutable_field", "layer", "layer and layer_share cannot change; create a new experiment")
	}
	if cur.Status == StatusStopped {
		return Spec{}, invalid("invalid_transition", "status", "experiment is stopped")
	}
	next.Normalize()
	if err := next.Validate(); err != nil {
		return Spec{}, err
	}
	if cur.Status != StatusDraft && BiasingChange(cur, next) {
		next.Phase = cur.Phase + 1
		next.PhaseStarted = now.UnixMilli()
	}
	next.UpdatedMS = now.UnixMilli()
	next.Revision++
	return next, nil
}

// BiasingChange reports whether going from a to b would mix differently
// randomized populations in one analysis.
func BiasingChange(a, b Spec) bool {
	if a.Unit != b.Unit || a.Control != b.Control || len(a.Arms) != len(b.Arms) {
		return true
	}
	var ta, tb float64
	for i := range a.Arms {
		ta += a.Arms[i].Weight
		tb += b.Arms[i].Weight
	}
	for i := range a.Arms {
		if a.Arms[i].Name != b.Arms[i].Name || math.Abs(a.Arms[i].Weight/ta-b.Arms[i].Weight/tb) > 1e-9 {
			return true
		}
	}
	return fmt.Sprint(a.Targeting) != fmt.Sprint(b.Targeting)
}
