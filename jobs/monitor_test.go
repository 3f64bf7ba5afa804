package jobs_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/jobs"
)

// looks is arms that counts the looks recorded.
type looks struct {
	arms
	recorded int
}

func (l *looks) Look(_ context.Context, _ experiments.Spec, _ float64, _ *experiments.Report, record bool, _ time.Time) error {
	if record {
		l.recorded++
	}
	return nil
}

// startCanary creates and starts a two-arm canary ramped 1-5-25%.
func startCanary(t *testing.T, ctl *control, minDuration string) experiments.Spec {
	t.Helper()
	spec := `{"name":"c","owner":"t","layer":"canary","unit":"user","primary_metric":"success_rate",
		"arms":[{"name":"baseline","weight":1},{"name":"canary","weight":1}],"control":"baseline",
		"guardrails":[{"metric":"error_rate","max_increase":0.05,"min_units":20}],
		"ramp":{"steps":[0.01,0.05,0.25],"min_duration":"` + minDuration + `","min_units":20}}`
	if !json.Valid([]byte(spec)) {
		t.Fatal("bad spec JSON")
	}
	ctx := context.Background()
	s, err := ctl.CreateExperiment(ctx, []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	if s, err = ctl.Act(ctx, s.ID, "start", "test", 0); err != nil {
		t.Fatal(err)
	}
	ctl.actions = nil
	return s
}

func TestMonitor(t *testing.T) {
	tests := []struct {
		name        string
		minDuration string
		canaryErr   float64
		dryRun      bool
		want        experiments.Action
		wantDid     string
		wantStatus  experiments.Status
		wantTraffic float64
	}{
		{"a breach rolls back", "0s", 0.4, false, experiments.ActionRollback, "rollback", experiments.StatusStopped, 0.01},
		{"a healthy step advances", "0s", 0.02, false, experiments.ActionAdvance, "ramp", experiments.StatusRunning, 0.05},
		{"a young step holds", "1h", 0.02, false, experiments.ActionHold, "", experiments.StatusRunning, 0.01},
		{"a dry run only reports", "0s", 0.4, true, experiments.ActionRollback, "", experiments.StatusRunning, 0.01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
			ctl := newControl(clk.Now)
			s := startCanary(t, ctl, tt.minDuration)
			r := &looks{arms: arms{units: 100, errRate: map[string]float64{"canary": tt.canaryErr}}}
			m := &jobs.Monitor{Control: ctl, Reader: r, Alpha: 0.05, DryRun: tt.dryRun, Progress: t.Logf, Now: clk.Now}
			rep, err := m.Analyze(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Experiments) != 1 {
				t.Fatalf("analysed %d experiments, want 1", len(rep.Experiments))
			}
			e := rep.Experiments[0]
			if e.Verdict.Action != tt.want || e.Applied != (tt.wantDid != "") || e.Error != "" {
				t.Errorf("verdict %s (%s) applied %v error %q, want %s applied %v", e.Verdict.Action, e.Verdict.Reason, e.Applied, e.Error, tt.want, tt.wantDid != "")
			}
			if got := ctl.did(); got != tt.wantDid {
				t.Errorf("admin actions = %q, want %q", got, tt.wantDid)
			}
			after, _ := ctl.reg.Get(s.ID)
			if after.Status != tt.wantStatus || after.Traffic != tt.wantTraffic {
				t.Errorf("after: status %s traffic %g, want %s %g", after.Status, after.Traffic, tt.wantStatus, tt.wantTraffic)
			}
			if want := map[bool]int{false: 1, true: 0}[tt.dryRun]; r.recorded != want {
				t.Errorf("looks recorded = %d, want %d", r.recorded, want)
			}
		})
	}
}

// Analyze with an id judges that experiment whatever its status; without,
// only the running ones.
func TestMonitorOnly(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
	ctl := newControl(clk.Now)
	s := startCanary(t, ctl, "1h")
	m := &jobs.Monitor{Control: ctl, Reader: &looks{arms: arms{units: 50}}, Alpha: 0.05, Progress: t.Logf, Now: clk.Now}
	if _, err := ctl.reg.Transition(context.Background(), s.ID, experiments.StatusPaused, "t", "pause"); err != nil {
		t.Fatal(err)
	}
	all, err := m.Analyze(context.Background(), "")
	if err != nil || len(all.Experiments) != 0 {
		t.Fatalf("Analyze(running) = %d experiments, %v; want none (the one is paused)", len(all.Experiments), err)
	}
	one, err := m.Analyze(context.Background(), s.ID)
	if err != nil || len(one.Experiments) != 1 || one.Experiments[0].Experiment != s.ID {
		t.Fatalf("Analyze(%s) = %+v, %v", s.ID, one.Experiments, err)
	}
}
