package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/spf13/pflag"

	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/router"
)

// canaryConfig shapes the canary experiment of jobs pipeline.
type canaryConfig struct {
	Steps        []float64     // traffic ramp; each arm gets half of it
	StepDuration time.Duration // how long each step holds before the next (and the last before promotion)
	MinUnits     int           // units per arm before a step advances and before a guardrail is judged
	Timeout      time.Duration // the canary fails when it has not passed by then
	Poll         time.Duration // how often ClickHouse is read
	Unit         string        // request | user | tenant
	Layer        string
	SpecFile     string  // template spec (guardrails, targeting, ...); arms, ramp and unit are set here
	MinRouted    float64 // share of the candidate arm's decisions that must carry the candidate's version
}

func addCanaryFlags(fs *pflag.FlagSet) *canaryConfig {
	c := &canaryConfig{}
	fs.Float64SliceVar(&c.Steps, "canary-steps", []float64{0.05, 0.2, 0.5}, "traffic ramp of the canary experiment (share of requests in it; the candidate arm gets half)")
	fs.DurationVar(&c.StepDuration, "canary-step-duration", 2*time.Minute, "how long each ramp step must hold with guardrails within limits (the last one before promotion)")
	fs.IntVar(&c.MinUnits, "canary-min-units", 200, "units per arm before a step advances and a guardrail is judged")
	fs.DurationVar(&c.Timeout, "canary-timeout", 30*time.Minute, "stop the canary (not promoted) when it has not passed by then")
	fs.DurationVar(&c.Poll, "canary-poll", 15*time.Second, "how often the canary's guardrails are read from ClickHouse")
	fs.StringVar(&c.Unit, "canary-unit", "request", "randomisation unit of the canary: request, user or tenant")
	fs.StringVar(&c.Layer, "canary-layer", "policy-canary", "experiment layer the canary takes whole (one policy canary at a time)")
	fs.StringVar(&c.SpecFile, "canary-spec", "", "experiment spec to start from (guardrails, targeting, primary metric); its arms, ramp, unit and layer are replaced")
	return c
}

// defaultCanaryGuardrails hold the candidate arm against the live arm. The
// experiments package judges a guardrail on the point estimates, once per
// poll, so the limits are wide enough that two arms routing alike do not
// trip them at a few hundred units (error rate ~2%: the difference's
// standard deviation at 200 units per arm is ~0.014).
func defaultCanaryGuardrails(minUnits int) []experiments.Guardrail {
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

// canaryRunner runs a candidate policy as a canary through the admin API
// and ClickHouse (jobs.Canary): it stages the candidate in the policies
// topic without making it live, starts an experiment whose candidate arm
// routes with it by version, ramps it by steps while the guardrails hold
// (read from ClickHouse), and rolls it back on a breach or stops it when
// the time is up. It never makes the candidate live: the pipeline's push
// step does, once Run reports a pass.
type canaryRunner struct {
	adm      *admin
	reader   *chexp.Reader
	conn     driver.Conn
	db       string
	cfg      canaryConfig
	progress func(string, ...any)
	now      func() time.Time
}

var _ jobs.Canary = (*canaryRunner)(nil)

// canaryReport is the canary step's report.
type canaryReport struct {
	Staged     string               `json:"staged_version"`
	Spec       experiments.Spec     `json:"spec"`
	Steps      []canaryStep         `json:"steps"`
	Last       *experiments.Report  `json:"last_report,omitempty"`
	Verdict    *experiments.Verdict `json:"last_verdict,omitempty"`
	Routed     uint64               `json:"candidate_arm_decisions"`
	RoutedCand uint64               `json:"candidate_arm_decisions_by_candidate"`
	ElapsedMS  int64                `json:"elapsed_ms"`
}

type canaryStep struct {
	AtMS    int64   `json:"at_ms"`
	Action  string  `json:"action"`
	Traffic float64 `json:"traffic"`
	Reason  string  `json:"reason"`
}

// Run implements jobs.Canary.
func (c *canaryRunner) Run(ctx context.Context, cand, live *router.Policy) (jobs.CanaryResult, error) {
	start := c.now()
	rep := &canaryReport{Steps: []canaryStep{}}
	res := jobs.CanaryResult{Report: rep}
	finish := func(passed bool, reason string) (jobs.CanaryResult, error) {
		res.Passed, res.Reason = passed, reason
		rep.ElapsedMS = c.now().Sub(start).Milliseconds()
		return res, nil
	}

	v, err := c.stage(ctx, cand)
	if err != nil {
		return res, err
	}
	rep.Staged = v
	c.progress("canary: staged %s in the policies topic (live stays %s)", v, live.Version)

	spec, err := c.spec(cand, live)
	if err != nil {
		return res, err
	}
	var created experiments.Spec
	body, _ := json.Marshal(spec)
	if err := c.adm.do(ctx, http.MethodPost, "/admin/experiments", body, &created); err != nil {
		return res, fmt.Errorf("create canary experiment: %w", err)
	}
	res.Experiment = created.ID
	if err := c.adm.do(ctx, http.MethodPost, "/admin/experiments/"+url.PathEscape(created.ID)+"/start", []byte(`{"reason":"jobs pipeline canary"}`), &created); err != nil {
		c.stop(created.ID, "could not start: "+err.Error())
		return res, fmt.Errorf("start canary experiment %s: %w", created.ID, err)
	}
	rep.Spec = created
	c.progress("canary: experiment %s running: %s arm routes with %s, %s arm with %s; ramp %v, %s per step, %d units per arm; timeout %s",
		created.ID, "candidate", cand.Version, "live", live.Version, c.cfg.Steps, c.cfg.StepDuration, c.cfg.MinUnits, c.cfg.Timeout)
	rep.Steps = append(rep.Steps, canaryStep{AtMS: c.now().UnixMilli(), Action: "start", Traffic: created.Traffic, Reason: "started"})

	deadline := start.Add(c.cfg.Timeout)
	lastReason := "no data yet"
	t := time.NewTicker(c.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.stop(created.ID, "interrupted")
			return res, fmt.Errorf("canary %s interrupted (experiment stopped): %w", created.ID, ctx.Err())
		case <-t.C:
		}
		var sp experiments.Spec
		if err := c.adm.do(ctx, http.MethodGet, "/admin/experiments/"+url.PathEscape(created.ID), nil, &sp); err != nil {
			c.progress("canary: %s: read experiment: %v", created.ID, err)
			if c.now().After(deadline) {
				c.stop(created.ID, "canary timed out: "+err.Error())
				return finish(false, fmt.Sprintf("not passed within %s (admin API: %v)", c.cfg.Timeout, err))
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
			done, passed, reason := c.judge(ctx, sp, rep)
			lastReason = reason
			if done {
				if passed {
					c.stop(sp.ID, "canary passed: "+cand.Version+" goes to the push step")
				}
				return finish(passed, reason)
			}
		}
		if c.now().After(deadline) {
			reason := fmt.Sprintf("not passed within %s (%s)", c.cfg.Timeout, lastReason)
			c.stop(sp.ID, "canary timed out: "+lastReason)
			return finish(false, reason)
		}
	}
}

// judge reads the canary's arms from ClickHouse and acts: rollback on a
// breach, advance a step, hold, or pass at the last step.
func (c *canaryRunner) judge(ctx context.Context, sp experiments.Spec, rep *canaryReport) (done, passed bool, reason string) {
	data, err := c.reader.Arms(ctx, sp)
	if err != nil {
		c.progress("canary: %s: read arms from ClickHouse: %v", sp.ID, err)
		return false, false, "ClickHouse: " + err.Error()
	}
	r := experiments.Analyze(sp, data, 0.05)
	now := c.now()
	v := experiments.Judge(sp, r, now)
	rep.Last, rep.Verdict = &r, &v
	units := make([]string, 0, len(r.Arms))
	for _, a := range r.Arms {
		units = append(units, fmt.Sprintf("%s %.0f", a.Arm, a.Units))
	}
	c.progress("canary: %s step %d traffic %g: units %s: %s (%s)", sp.ID, rampStep(sp), sp.Traffic, strings.Join(units, ", "), v.Action, v.Reason)
	switch v.Action {
	case experiments.ActionRollback:
		body, _ := json.Marshal(map[string]string{"reason": v.Reason})
		var after experiments.Spec
		if err := c.adm.do(ctx, http.MethodPost, "/admin/experiments/"+url.PathEscape(sp.ID)+"/rollback", body, &after); err != nil {
			c.progress("canary: %s: rollback: %v", sp.ID, err)
			c.stop(sp.ID, v.Reason)
		}
		rep.Steps = append(rep.Steps, canaryStep{AtMS: now.UnixMilli(), Action: "rollback", Traffic: sp.Traffic, Reason: v.Reason})
		return true, false, "rolled back: " + v.Reason
	case experiments.ActionAdvance:
		body, _ := json.Marshal(map[string]any{"traffic": v.Next, "reason": v.Reason})
		var after experiments.Spec
		if err := c.adm.do(ctx, http.MethodPost, "/admin/experiments/"+url.PathEscape(sp.ID)+"/ramp", body, &after); err != nil {
			c.progress("canary: %s: ramp to %g: %v", sp.ID, v.Next, err)
			return false, false, v.Reason
		}
		rep.Steps = append(rep.Steps, canaryStep{AtMS: now.UnixMilli(), Action: "advance", Traffic: v.Next, Reason: v.Reason})
		return false, false, v.Reason
	}
	if sp.Ramp == nil || sp.Ramp.Step < len(sp.Ramp.Steps)-1 {
		return false, false, v.Reason
	}
	// the last step: pass once it has held for the step duration with
	// enough units, every guardrail judged and within limits
	if d := now.Sub(time.UnixMilli(sp.Ramp.StepStartedMS)); d < c.cfg.StepDuration {
		return false, false, fmt.Sprintf("last step has run %s of %s", d.Round(time.Second), c.cfg.StepDuration)
	}
	if r.SRM {
		return false, false, fmt.Sprintf("sample ratio mismatch (p = %.2g)", r.SRMPValue)
	}
	for _, a := range r.Arms {
		if a.Units < float64(c.cfg.MinUnits) {
			return false, false, fmt.Sprintf("arm %s has %.0f of %d units", a.Arm, a.Units, c.cfg.MinUnits)
		}
	}
	for _, g := range r.Guardrails {
		if !g.Ready {
			return false, false, fmt.Sprintf("guardrail %s on %s lacks units", g.Metric, g.Arm)
		}
	}
	// the candidate arm must really have routed with the candidate: an arm
	// whose policy version no replica can find routes with the live one
	total, byCand, err := c.routed(ctx, sp)
	if err != nil {
		return false, false, "ClickHouse: " + err.Error()
	}
	rep.Routed, rep.RoutedCand = total, byCand
	if total == 0 || float64(byCand) < c.cfg.MinRouted*float64(total) {
		reason := fmt.Sprintf("the candidate arm's decisions were routed by the candidate %d of %d times: the replicas did not find the staged policy", byCand, total)
		c.stop(sp.ID, reason)
		return true, false, reason
	}
	return true, true, fmt.Sprintf("held %d steps up to traffic %g with every guardrail within limits (%s)", len(sp.Ramp.Steps), sp.Traffic, guardrailSummary(r.Guardrails))
}

// routed counts the candidate arm's decisions and those routed by the
// candidate's policy version.
func (c *canaryRunner) routed(ctx context.Context, sp experiments.Spec) (total, byCand uint64, err error) {
	var arm experiments.Arm
	for _, a := range sp.Arms {
		if a.Name != sp.Control {
			arm = a
		}
	}
	q := fmt.Sprintf(`SELECT count(), countIf(policy_version = ?) FROM %s.decisions
		PREWHERE has(arm_experiments, ?) WHERE ts >= toDateTime(?) AND arm_names[indexOf(arm_experiments, ?)] = ? AND arm_phases[indexOf(arm_experiments, ?)] = ?`, c.db)
	err = c.conn.QueryRow(ctx, q, arm.Overrides.PolicyVersion, sp.ID, time.UnixMilli(sp.PhaseStarted).Unix(), sp.ID, arm.Name, sp.ID, int32(sp.Phase)).Scan(&total, &byCand)
	return total, byCand, err
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

// stage publishes the candidate without making it live.
func (c *canaryRunner) stage(ctx context.Context, cand *router.Policy) (string, error) {
	b, err := cand.JSON()
	if err != nil {
		return "", err
	}
	var out struct {
		Version string `json:"version"`
		Live    string `json:"live"`
	}
	if err := c.adm.do(ctx, http.MethodPost, "/admin/policy/stage", b, &out); err != nil {
		return "", fmt.Errorf("stage candidate %s: %w", cand.Version, err)
	}
	if out.Version != cand.Version {
		return "", fmt.Errorf("stage candidate %s: the admin API staged %q", cand.Version, out.Version)
	}
	return out.Version, nil
}

// stop ends the experiment whatever ctx says (a canary must not be left
// running when the runner goes away).
func (c *canaryRunner) stop(id, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"reason": reason})
	var after experiments.Spec
	if err := c.adm.do(ctx, http.MethodPost, "/admin/experiments/"+url.PathEscape(id)+"/stop", body, &after); err != nil {
		c.progress("canary: stop %s: %v", id, err)
		return
	}
	c.progress("canary: experiment %s stopped: %s", id, reason)
}

// spec is the canary experiment: live vs candidate, half each, ramped.
func (c *canaryRunner) spec(cand, live *router.Policy) (experiments.Spec, error) {
	var s experiments.Spec
	if c.cfg.SpecFile != "" {
		b, err := os.ReadFile(c.cfg.SpecFile)
		if err != nil {
			return s, err
		}
		if s, err = experiments.ParseSpec(b); err != nil {
			return s, fmt.Errorf("%s: %w", c.cfg.SpecFile, err)
		}
		s.ID, s.Salt, s.Buckets, s.Status, s.Phase, s.Revision = "", "", nil, "", 0, 0
	} else {
		s = experiments.Spec{
			Owner:         "routelab jobs pipeline",
			PrimaryMetric: "success_rate",
			Guardrails:    defaultCanaryGuardrails(c.cfg.MinUnits),
		}
	}
	s.Name = "policy canary " + cand.Version
	if s.Hypothesis == "" {
		s.Hypothesis = fmt.Sprintf("%s (recalibrated from %s) routes no worse than %s on live traffic: error rate, QA fail rate, cost per image and p95 latency hold.", cand.Version, live.Version, live.Version)
	}
	s.Layer, s.LayerShare, s.Unit = c.cfg.Layer, 1, experiments.UnitKind(c.cfg.Unit)
	s.Arms = []experiments.Arm{
		{Name: "live", Weight: 1, Description: "the live policy " + live.Version},
		{Name: "candidate", Weight: 1, Description: "the candidate policy " + cand.Version, Overrides: experiments.Overrides{PolicyVersion: cand.Version}},
	}
	s.Control = "live"
	s.Ramp = &experiments.Ramp{Steps: c.cfg.Steps, MinDuration: experiments.Duration(c.cfg.StepDuration), MinUnits: c.cfg.MinUnits}
	s.Traffic = 0
	s.Normalize()
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("canary spec: %w", err)
	}
	return s, nil
}

func (c *canaryConfig) validate() error {
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
