package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/router"
)

// clock is a virtual clock that moves a second forward on every reading,
// so a runner's step durations and timeouts pass without waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// control is the admin API over a real experiments registry in memory; it
// records every action it was asked for.
type control struct {
	reg     *experiments.Registry
	mu      sync.Mutex
	staged  []string
	actions []string
}

func newControl(now func() time.Time) *control {
	mem := experiments.NewMemLog()
	reg := experiments.NewRegistry(mem, nil, now)
	mem.Bind(reg.Apply)
	return &control{reg: reg}
}

func (c *control) Stage(_ context.Context, p *router.Policy) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.staged = append(c.staged, p.Version)
	return p.Version, nil
}

func (c *control) CreateExperiment(ctx context.Context, b []byte) (experiments.Spec, error) {
	s, err := experiments.ParseSpec(b)
	if err != nil {
		return s, err
	}
	return c.reg.Create(ctx, s, "test")
}

func (c *control) Experiment(_ context.Context, id string) (experiments.Spec, error) {
	return c.reg.Get(id)
}

func (c *control) Experiments(_ context.Context, status string) ([]experiments.Spec, error) {
	var out []experiments.Spec
	for _, s := range c.reg.List() {
		if status == "" || string(s.Status) == status {
			out = append(out, s)
		}
	}
	return out, nil
}

func (c *control) Act(ctx context.Context, id, action, why string, traffic float64) (experiments.Spec, error) {
	c.mu.Lock()
	c.actions = append(c.actions, action)
	c.mu.Unlock()
	switch action {
	case "start":
		return c.reg.Transition(ctx, id, experiments.StatusRunning, "test", why)
	case "stop":
		return c.reg.Transition(ctx, id, experiments.StatusStopped, "test", why)
	case "ramp":
		return c.reg.RampTo(ctx, id, traffic, "test", why)
	case "rollback":
		return c.reg.Rollback(ctx, id, "test", why)
	}
	return experiments.Spec{}, fmt.Errorf("unknown action %q", action)
}

func (c *control) did() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.actions, " ")
}

// arms serves each arm's aggregates as if units units had sent three
// requests each, failing at the arm's error rate; Routed answers with the
// given counts.
type arms struct {
	units     int
	errRate   map[string]float64 // by arm; default 0.02
	fail      error              // every read fails with it
	routed    [2]uint64          // total, by the candidate
	routedArm string
}

func (a *arms) Arms(_ context.Context, s experiments.Spec) ([]experiments.ArmData, error) {
	if a.fail != nil {
		return nil, a.fail
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var out []experiments.ArmData
	for _, arm := range s.Arms {
		p, ok := a.errRate[arm.Name]
		if !ok {
			p = 0.02
		}
		d := experiments.ArmData{Arm: arm.Name, Units: float64(a.units), Requests: float64(3 * a.units), Ratios: map[string]experiments.RatioMoments{}}
		for range a.units {
			errs := 0.0
			for range 3 {
				if rng.Float64() < p {
					errs++
				}
			}
			for m, x := range map[string]float64{"error_rate": errs, "success_rate": 3 - errs} {
				r := d.Ratios[m]
				r.Add(x, 3)
				d.Ratios[m] = r
			}
		}
		out = append(out, d)
	}
	return out, nil
}

func (a *arms) Routed(_ context.Context, _ experiments.Spec, arm, _ string) (uint64, uint64, error) {
	a.routedArm = arm
	return a.routed[0], a.routed[1], nil
}

func canaryPolicies(t *testing.T) (cand, live *router.Policy) {
	t.Helper()
	live, err := datasets.Policy("rules")
	if err != nil {
		t.Fatal(err)
	}
	c := *live
	c.Name, c.Version, c.Checksum = "candidate", "", ""
	if err := c.Seal(); err != nil {
		t.Fatal(err)
	}
	return &c, live
}

func errorRateGuardrail() *experiments.Spec {
	inc := 0.05
	return &experiments.Spec{Owner: "test", PrimaryMetric: "success_rate",
		Guardrails: []experiments.Guardrail{{Metric: "error_rate", MaxIncrease: &inc, MinUnits: 30}}}
}

func newRunner(t *testing.T, ctl *control, r *arms, clk *clock) *jobs.CanaryRunner {
	t.Helper()
	cfg := jobs.CanaryConfig{Steps: []float64{0.2, 1}, StepDuration: 5 * time.Second, MinUnits: 30, Timeout: 2 * time.Minute,
		Poll: time.Millisecond, Unit: "request", Layer: "policy-canary", Template: errorRateGuardrail()}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &jobs.CanaryRunner{Control: ctl, Reader: r, Config: cfg, Now: clk.Now, Progress: t.Logf}
}

func TestCanaryRunner(t *testing.T) {
	tests := []struct {
		name       string
		reader     *arms
		wantPassed bool
		wantReason string // substring
		wantDid    string // the admin actions, in order
	}{{
		name:       "a candidate that holds passes after the last step",
		reader:     &arms{units: 200, routed: [2]uint64{600, 600}},
		wantPassed: true, wantReason: "held 2 steps up to traffic 1",
		wantDid: "start ramp stop",
	}, {
		name:       "a guardrail breach rolls back",
		reader:     &arms{units: 200, errRate: map[string]float64{"candidate": 0.4}, routed: [2]uint64{600, 600}},
		wantReason: "rolled back: ", wantDid: "start rollback",
	}, {
		name:       "a candidate arm routed by the live policy fails",
		reader:     &arms{units: 200, routed: [2]uint64{600, 300}},
		wantReason: "routed by the candidate 300 of 600 times", wantDid: "start ramp stop",
	}, {
		name:       "unreadable arms time out",
		reader:     &arms{fail: errors.New("clickhouse away")},
		wantReason: "not passed within 2m0s (ClickHouse: clickhouse away)", wantDid: "start stop",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
			ctl := newControl(clk.Now)
			cand, live := canaryPolicies(t)
			res, err := newRunner(t, ctl, tt.reader, clk).Run(context.Background(), cand, live)
			if err != nil {
				t.Fatal(err)
			}
			if res.Passed != tt.wantPassed || !strings.Contains(res.Reason, tt.wantReason) {
				t.Errorf("Run = passed %v (%s), want passed %v with %q", res.Passed, res.Reason, tt.wantPassed, tt.wantReason)
			}
			if got := ctl.did(); got != tt.wantDid {
				t.Errorf("admin actions = %q, want %q", got, tt.wantDid)
			}
			if len(ctl.staged) != 1 || ctl.staged[0] != cand.Version {
				t.Errorf("staged %v, want [%s]", ctl.staged, cand.Version)
			}
			sp, err := ctl.reg.Get(res.Experiment)
			if err != nil {
				t.Fatal(err)
			}
			if sp.Status != experiments.StatusStopped {
				t.Errorf("experiment left %s, want stopped", sp.Status)
			}
			arm := sp.Arms[1]
			if arm.Name != "candidate" || arm.Overrides.PolicyVersion != cand.Version || sp.Control != "live" || sp.Layer != "policy-canary" {
				t.Errorf("canary spec: arms %+v control %s layer %s", sp.Arms, sp.Control, sp.Layer)
			}
			if tt.wantPassed && tt.reader.routedArm != "candidate" {
				t.Errorf("Routed asked about arm %q, want candidate", tt.reader.routedArm)
			}
		})
	}
}

// An interrupted canary stops its experiment and says so.
func TestCanaryRunnerInterrupted(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
	ctl := newControl(clk.Now)
	ctx, cancel := context.WithCancel(context.Background())
	r := newRunner(t, ctl, &arms{units: 5}, clk)
	r.Progress = func(format string, a ...any) {
		if strings.HasPrefix(format, "canary: %s step") {
			cancel() // after the first judgement
		}
	}
	cand, live := canaryPolicies(t)
	res, err := r.Run(ctx, cand, live)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v, want context.Canceled", err)
	}
	if sp, _ := ctl.reg.Get(res.Experiment); sp.Status != experiments.StatusStopped {
		t.Errorf("experiment left %s, want stopped", sp.Status)
	}
}

func TestCanaryConfigValidate(t *testing.T) {
	ok := jobs.CanaryConfig{Steps: []float64{0.05, 0.2, 0.5}, Poll: time.Second, Timeout: time.Minute, MinUnits: 1, Unit: "user"}
	tests := []struct {
		name   string
		change func(*jobs.CanaryConfig)
		want   string // "" valid
	}{
		{"defaults", func(*jobs.CanaryConfig) {}, ""},
		{"no steps", func(c *jobs.CanaryConfig) { c.Steps = nil }, "at least one step"},
		{"decreasing", func(c *jobs.CanaryConfig) { c.Steps = []float64{0.5, 0.2} }, "must increase"},
		{"over 1", func(c *jobs.CanaryConfig) { c.Steps = []float64{0.5, 1.5} }, "must increase"},
		{"no poll", func(c *jobs.CanaryConfig) { c.Poll = 0 }, "--canary-poll"},
		{"unit", func(c *jobs.CanaryConfig) { c.Unit = "session" }, "--canary-unit"},
	}
	for _, tt := range tests {
		c := ok
		c.Steps = append([]float64(nil), ok.Steps...)
		tt.change(&c)
		err := c.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
		if err == nil && c.MinRouted != 0.99 {
			t.Errorf("%s: MinRouted = %v, want the 0.99 default", tt.name, c.MinRouted)
		}
	}
}
