package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/router"
)

// ExperimentControl is the admin API as the canary and the guardrail
// monitor use it (server/client.Admin): every change goes through serve,
// which writes it to the experiments topic and audits it.
type ExperimentControl interface {
	// Stage publishes p without making it live and returns its version.
	Stage(ctx context.Context, p *router.Policy) (string, error)
	CreateExperiment(ctx context.Context, spec []byte) (experiments.Spec, error)
	Experiment(ctx context.Context, id string) (experiments.Spec, error)
	Experiments(ctx context.Context, status string) ([]experiments.Spec, error)
	// Act applies start, stop, ramp (to traffic; 0: the next step) or
	// rollback with why as the audited reason.
	Act(ctx context.Context, id, action, why string, traffic float64) (experiments.Spec, error)
}

// ArmReader reads the aggregates of an experiment's current phase per arm
// (experiments/clickhouse.Reader).
type ArmReader interface {
	Arms(ctx context.Context, s experiments.Spec) ([]experiments.ArmData, error)
}

// CanaryReader is what the canary reads: the arms, and how many of an
// arm's decisions were routed by a policy version.
type CanaryReader interface {
	ArmReader
	Routed(ctx context.Context, s experiments.Spec, arm, version string) (total, byVersion uint64, err error)
}

// CanaryConfig shapes the canary experiment of the pipeline.
type CanaryConfig struct {
	Steps        []float64     // traffic ramp; each arm gets half of it
	StepDuration time.Duration // how long each step holds before the next (and the last before promotion)
	MinUnits     int           // units per arm before a step advances and before a guardrail is judged
	Timeout      time.Duration // the canary fails when it has not passed by then
	Poll         time.Duration // how often the arms are read
	Unit         string        // request | user | tenant
	Layer        string
	// Template is the spec to start from (guardrails, targeting, primary
	// metric); its arms, ramp, unit and layer are replaced. nil: the
	// default guardrails.
	Template *experiments.Spec
	// MinRouted is the share of the candidate arm's decisions that must
	// carry the candidate's version (0: 0.99).
	MinRouted float64
}

// Validate checks c and fills MinRouted's default. The messages name the
// flags of `routelab jobs pipeline`.
func (c *CanaryConfig) Validate() error {
	if len(c.Steps) == 0 {
		return errors.New("--canary-steps: at least one step")
	}
	prev := 0.0
	for _, st := range c.Steps {
		if !(st > prev && st <= 1) {
			return fmt.Errorf("--canary-steps %v: steps must increase within (0, 1]", c.Steps)
		}
		prev = st
	}
	if c.Poll <= 0 || c.Timeout <= 0 || c.StepDuration < 0 || c.MinUnits < 1 {
		return errors.New("--canary-poll and --canary-timeout must be > 0, --canary-step-duration >= 0, --canary-min-units >= 1")
	}
	switch c.Unit {
	case "request", "user", "tenant":
	default:
		return fmt.Errorf("--canary-unit must be request, user or tenant, not %q", c.Unit)
	}
	if c.MinRouted == 0 {
		c.MinRouted = 0.99
	}
	return nil
}

// DefaultCanaryGuardrails hold the candidate arm against the live arm. The
// experiments package judges a guardrail on the point estimates, once per
// poll, so the limits are wide enough that two arms routing alike do not
// trip them at a few hundred units (error rate ~2%: the difference's
// standard deviation at 200 units per arm is ~0.014).
func DefaultCanaryGuardrails(minUnits int) []experiments.Guardrail {
	g := func(metric string, maxInc float64) experiments.Guardrail {
		return experiments.Guardrail{Metric: metric, MaxIncrease: &maxInc, MinUnits: minUnits}
	}
	return []experiments.Guardrail{
		g("error_rate", 0.05),
		g("qa_fail_rate", 0.10),
		g("cost_per_image", 0.05),
		g("latency_p95_ms", 3000),
	}
}

// CanaryRunner runs a candidate policy as a canary: it stages the
// candidate without making it live, starts an experiment whose candidate
// arm routes with it by version, ramps it by steps while the guardrails
// hold, and rolls it back on a breach or stops it when the time is up. It
// never makes the candidate live: the pipeline's push step does, once Run
// reports a pass.
type CanaryRunner struct {
	Control  ExperimentControl
	Reader   CanaryReader
	Config   CanaryConfig
	Progress func(string, ...any)
	Now      func() time.Time
	// StopTimeout bounds the stop of an experiment the runner leaves (it
	// runs whatever the run's context says); 0: 30 s.
	StopTimeout time.Duration
}

var _ Canary = (*CanaryRunner)(nil)

// CanaryReport is the canary step's report.
type CanaryReport struct {
	Staged     string               `json:"staged_version"`
	Spec       experiments.Spec     `json:"spec"`
	Steps      []CanaryStep         `json:"steps"`
	Last       *experiments.Report  `json:"last_report,omitempty"`
	Verdict    *experiments.Verdict `json:"last_verdict,omitempty"`
	Routed     uint64               `json:"candidate_arm_decisions"`
	RoutedCand uint64               `json:"candidate_arm_decisions_by_candidate"`
	ElapsedMS  int64                `json:"elapsed_ms"`
}

// CanaryStep is one change the runner made to the canary's traffic.
type CanaryStep struct {
	AtMS    int64   `json:"at_ms"`
	Action  string  `json:"action"`
	Traffic float64 `json:"traffic"`
	Reason  string  `json:"reason"`
}

// Run implements Canary.
func (c *CanaryRunner) Run(ctx context.Context, cand, live *router.Policy) (CanaryResult, error) {
	start := c.Now()
	rep := &CanaryReport{Steps: []CanaryStep{}}
	res := CanaryResult{Report: rep}
	finish := func(passed bool, reason string) (CanaryResult, error) {
		res.Passed, res.Reason = passed, reason
		rep.ElapsedMS = c.Now().Sub(start).Milliseconds()
		return res, nil
	}

	v, err := c.Control.Stage(ctx, cand)
	if err != nil {
		return res, fmt.Errorf("stage candidate %s: %w", cand.Version, err)
	}
	rep.Staged = v
	c.Progress("canary: staged %s in the policies topic (live stays %s)", v, live.Version)

	spec, err := c.spec(cand, live)
	if err != nil {
		return res, err
	}
	created, err := c.Control.CreateExperiment(ctx, spec)
	if err != nil {
		return res, fmt.Errorf("create canary experiment: %w", err)
	}
	res.Experiment = created.ID
	if created, err = c.Control.Act(ctx, created.ID, "start", "jobs pipeline canary", 0); err != nil {
		c.stop(res.Experiment, "could not start: "+err.Error())
		return res, fmt.Errorf("start canary experiment %s: %w", res.Experiment, err)
	}
	rep.Spec = created
	cfg := c.Config
	c.Progress("canary: experiment %s running: %s arm routes with %s, %s arm with %s; ramp %v, %s per step, %d units per arm; timeout %s",
		created.ID, "candidate", cand.Version, "live", live.Version, cfg.Steps, cfg.StepDuration, cfg.MinUnits, cfg.Timeout)
	rep.Steps = append(rep.Steps, CanaryStep{AtMS: c.Now().UnixMilli(), Action: "start", Traffic: created.Traffic, Reason: "started"})

	deadline := start.Add(cfg.Timeout)
	lastReason := "no data yet"
	t := time.NewTicker(cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.stop(created.ID, "interrupted")
			return res, fmt.Errorf("canary %s interrupted (experiment stopped): %w", created.ID, ctx.Err())
		case <-t.C:
		}
		sp, err := c.Control.Experiment(ctx, created.ID)
		if err != nil {
			c.Progress("canary: %s: read experiment: %v", created.ID, err)
			if c.Now().After(deadline) {
				c.stop(created.ID, "canary timed out: "+err.Error())
				return finish(false, fmt.Sprintf("not passed within %s (admin API: %v)", cfg.Timeout, err))
			}
			continue
		}
		rep.Spec = sp
		if sp.Status == experiments.StatusStopped {
			// rolled back by this runner, by the guardrail monitor of
			// routelab dev / jobs analyze, or stopped by hand
			if sp.RolledBack {
				return finish(false, "rolled back: "+sp.StopReason)
			}
			return finish(false, "experiment stopped: "+sp.StopReason)
		}
		if sp.Status != experiments.StatusRunning {
			lastReason = "experiment is " + string(sp.Status)
		} else {
			done, passed, reason := c.judge(ctx, sp, cand.Version, rep)
			lastReason = reason
			if done {
				if passed {
					c.stop(sp.ID, "canary passed: "+cand.Version+" goes to the push step")
				}
				return finish(passed, reason)
			}
		}
		if c.Now().After(deadline) {
			c.stop(sp.ID, "canary timed out: "+lastReason)
			return finish(false, fmt.Sprintf("not passed within %s (%s)", cfg.Timeout, lastReason))
		}
	}
}

// judge reads the canary's arms and acts: rollback on a breach, advance a
// step, hold, or pass at the last step.
func (c *CanaryRunner) judge(ctx context.Context, sp experiments.Spec, version string, rep *CanaryReport) (done, passed bool, reason string) {
	data, err := c.Reader.Arms(ctx, sp)
	if err != nil {
		c.Progress("canary: %s: read arms from ClickHouse: %v", sp.ID, err)
		return false, false, "ClickHouse: " + err.Error()
	}
	r := experiments.Analyze(sp, data, 0.05)
	now := c.Now()
	v := experiments.Judge(sp, r, now)
	rep.Last, rep.Verdict = &r, &v
	units := make([]string, 0, len(r.Arms))
	for _, a := range r.Arms {
		units = append(units, fmt.Sprintf("%s %.0f", a.Arm, a.Units))
	}
	c.Progress("canary: %s step %d traffic %g: units %s: %s (%s)", sp.ID, rampStep(sp), sp.Traffic, strings.Join(units, ", "), v.Action, v.Reason)
	switch v.Action {
	case experiments.ActionRollback:
		if _, err := c.Control.Act(ctx, sp.ID, "rollback", v.Reason, 0); err != nil {
			c.Progress("canary: %s: rollback: %v", sp.ID, err)
			c.stop(sp.ID, v.Reason)
		}
		rep.Steps = append(rep.Steps, CanaryStep{AtMS: now.UnixMilli(), Action: "rollback", Traffic: sp.Traffic, Reason: v.Reason})
		return true, false, "rolled back: " + v.Reason
	case experiments.ActionAdvance:
		if _, err := c.Control.Act(ctx, sp.ID, "ramp", v.Reason, v.Next); err != nil {
			c.Progress("canary: %s: ramp to %g: %v", sp.ID, v.Next, err)
			return false, false, v.Reason
		}
		rep.Steps = append(rep.Steps, CanaryStep{AtMS: now.UnixMilli(), Action: "advance", Traffic: v.Next, Reason: v.Reason})
		return false, false, v.Reason
	}
	if sp.Ramp == nil || sp.Ramp.Step < len(sp.Ramp.Steps)-1 {
		return false, false, v.Reason
	}
	if reason, ok := c.lastStepHeld(sp, r, now); !ok {
		return false, false, reason
	}
	// the candidate arm must really have routed with the candidate: an arm
	// whose policy version no replica can find routes with the live one
	total, byCand, err := c.Reader.Routed(ctx, sp, candidateArm(sp), version)
	if err != nil {
		return false, false, "ClickHouse: " + err.Error()
	}
	rep.Routed, rep.RoutedCand = total, byCand
	if total == 0 || float64(byCand) < c.Config.MinRouted*float64(total) {
		reason := fmt.Sprintf("the candidate arm's decisions were routed by the candidate %d of %d times: the replicas did not find the staged policy", byCand, total)
		c.stop(sp.ID, reason)
		return true, false, reason
	}
	return true, true, fmt.Sprintf("held %d steps up to traffic %g with every guardrail within limits (%s)", len(sp.Ramp.Steps), sp.Traffic, guardrailSummary(r.Guardrails))
}

// lastStepHeld says whether the last step has held for the step duration
// with enough units, no sample ratio mismatch, and every guardrail judged
// and within limits; else why not.
func (c *CanaryRunner) lastStepHeld(sp experiments.Spec, r experiments.Report, now time.Time) (string, bool) {
	if d := now.Sub(time.UnixMilli(sp.Ramp.StepStartedMS)); d < c.Config.StepDuration {
		return fmt.Sprintf("last step has run %s of %s", d.Round(time.Second), c.Config.StepDuration), false
	}
	if r.SRM {
		return fmt.Sprintf("sample ratio mismatch (p = %.2g)", r.SRMPValue), false
	}
	for _, a := range r.Arms {
		if a.Units < float64(c.Config.MinUnits) {
			return fmt.Sprintf("arm %s has %.0f of %d units", a.Arm, a.Units, c.Config.MinUnits), false
		}
	}
	for _, g := range r.Guardrails {
		if !g.Ready {
			return fmt.Sprintf("guardrail %s on %s lacks units", g.Metric, g.Arm), false
		}
	}
	return "", true
}

func candidateArm(sp experiments.Spec) string {
	for _, a := range sp.Arms {
		if a.Name != sp.Control {
			return a.Name
		}
	}
	return ""
}

func guardrailSummary(gs []experiments.GuardrailResult) string {
	parts := make([]string, 0, len(gs))
	for _, g := range gs {
		parts = append(parts, fmt.Sprintf("%s %.4g vs %.4g", g.Metric, g.Value, g.Control))
	}
	return strings.Join(parts, "; ")
}

func rampStep(s experiments.Spec) int {
	if s.Ramp == nil {
		return 0
	}
	return s.Ramp.Step
}

// stop ends the experiment whatever the run's context says (a canary must
// not be left running when the runner goes away).
func (c *CanaryRunner) stop(id, reason string) {
	d := c.StopTimeout
	if d <= 0 {
		d = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if _, err := c.Control.Act(ctx, id, "stop", reason, 0); err != nil {
		c.Progress("canary: stop %s: %v", id, err)
		return
	}
	c.Progress("canary: experiment %s stopped: %s", id, reason)
}

// spec is the canary experiment: live vs candidate, half each, ramped.
func (c *CanaryRunner) spec(cand, live *router.Policy) ([]byte, error) {
	var s experiments.Spec
	if t := c.Config.Template; t != nil {
		s = *t
		s.ID, s.Salt, s.Buckets, s.Status, s.Phase, s.Revision = "", "", nil, "", 0, 0
	} else {
		s = experiments.Spec{
			Owner:         "routelab jobs pipeline",
			PrimaryMetric: "success_rate",
			Guardrails:    DefaultCanaryGuardrails(c.Config.MinUnits),
		}
	}
	s.Name = "policy canary " + cand.Version
	if s.Hypothesis == "" {
		s.Hypothesis = fmt.Sprintf("%s (recalibrated from %s) routes no worse than %s on live traffic: error rate, QA fail rate, cost per image and p95 latency hold.", cand.Version, live.Version, live.Version)
	}
	s.Layer, s.LayerShare, s.Unit = c.Config.Layer, 1, experiments.UnitKind(c.Config.Unit)
	s.Arms = []experiments.Arm{
		{Name: "live", Weight: 1, Description: "the live policy " + live.Version},
		{Name: "candidate", Weight: 1, Description: "the candidate policy " + cand.Version, Overrides: experiments.Overrides{PolicyVersion: cand.Version}},
	}
	s.Control = "live"
	s.Ramp = &experiments.Ramp{Steps: c.Config.Steps, MinDuration: experiments.Duration(c.Config.StepDuration), MinUnits: c.Config.MinUnits}
	s.Traffic = 0
	s.Normalize()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("canary spec: %w", err)
	}
	return json.Marshal(s)
}
