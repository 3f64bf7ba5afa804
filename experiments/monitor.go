package experiments

import (
	"fmt"
	"strings"
	"time"
)

// Action is what the guardrail monitor does with a running experiment.
type Action string

const (
	ActionHold     Action = "hold"
	ActionAdvance  Action = "advance"
	ActionRollback Action = "rollback"
)

// Verdict is the monitor's decision on one experiment, with why.
type Verdict struct {
	Experiment string  `json:"experiment"`
	Action     Action  `json:"action"`
	Reason     string  `json:"reason"`
	Traffic    float64 `json:"traffic"`      // traffic now
	Next       float64 `json:"next_traffic"` // traffic after an advance
}

// Judge decides what to do with a running experiment given its current
// report: roll back on any breached guardrail; for a canary, advance to the
// next ramp step once the step has lasted MinDuration, every arm has
// MinUnits units, every guardrail has enough units to be judged and the
// sample ratio is sane; otherwise hold.
func Judge(s Spec, r Report, now time.Time) Verdict {
	v := Verdict{Experiment: s.ID, Action: ActionHold, Traffic: s.Traffic}
	if s.Status != StatusRunning {
		v.Reason = "not running"
		return v
	}
	var breaches []string
	ready := true
	for _, g := range r.Guardrails {
		if g.Breached {
			breaches = append(breaches, g.Reason)
		}
		if !g.Ready {
			ready = false
		}
	}
	if len(breaches) > 0 {
		v.Action, v.Reason = ActionRollback, "guardrail breached: "+strings.Join(breaches, "; ")
		return v
	}
	if s.Ramp == nil {
		v.Reason = "guardrails hold"
		return v
	}
	if s.Ramp.Step >= len(s.Ramp.Steps)-1 {
		v.Reason = "ramp complete"
		return v
	}
	if r.SRM {
		v.Reason = fmt.Sprintf("sample ratio mismatch (p = %.2g): not advancing", r.SRMPValue)
		return v
	}
	if d := now.Sub(time.UnixMilli(s.Ramp.StepStartedMS)); d < time.Duration(s.Ramp.MinDuration) {
		v.Reason = fmt.Sprintf("step %d has run %s of %s", s.Ramp.Step, d.Round(time.Second), time.Duration(s.Ramp.MinDuration))
		return v
	}
	for _, a := range r.Arms {
		if a.Units < float64(s.Ramp.MinUnits) {
			v.Reason = fmt.Sprintf("arm %s has %.0f of %d units", a.Arm, a.Units, s.Ramp.MinUnits)
			return v
		}
	}
	if !ready {
		v.Reason = "guardrails lack units to be judged"
		return v
	}
	v.Action, v.Next = ActionAdvance, s.Ramp.Steps[s.Ramp.Step+1]
	v.Reason = fmt.Sprintf("step %d held for %s with guardrails within limits", s.Ramp.Step, time.Duration(s.Ramp.MinDuration))
	return v
}
