package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/jobs"
)

func (c *control) Reweight(ctx context.Context, id string, outcomes map[string][]experiments.ArmOutcomes) (experiments.Spec, error) {
	c.mu.Lock()
	c.actions = append(c.actions, "reweight")
	c.mu.Unlock()
	s, _, err := c.reg.Reweight(ctx, id, outcomes, "test")
	return s, err
}

// banditLog is a reader whose bandit logged arm b succeeding far more
// often than arm a, at propensities 0.5.
type banditLog struct{ looks }

func (banditLog) BanditGroups(context.Context, experiments.Spec) ([]experiments.LoggedGroup, error) {
	return []experiments.LoggedGroup{
		{Arm: 0, Propensity: 0.5, Stratum: "", N: 300, Sum: 90, SumSq: 90},
		{Arm: 1, Propensity: 0.5, Stratum: "", N: 300, Sum: 240, SumSq: 240},
	}, nil
}

// TestMonitorReweightsBandit: the guardrail monitor analyses a bandit by
// its logged propensities (no fixed-split report) and hands its outcomes
// to the control plane, which re-weights it towards the better arm once
// its schedule is due; a dry run changes nothing.
func TestMonitorReweightsBandit(t *testing.T) {
	for _, dry := range []bool{false, true} {
		clk := &clock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
		ctl := newControl(clk.Now)
		ctx := context.Background()
		s, err := ctl.CreateExperiment(ctx, []byte(`{"name":"b","owner":"t","layer":"bandit","unit":"request","primary_metric":"success_rate",
			"kind":"bandit","bandit":{"every":"1s","burn_in":50,"min_share":0.05},
			"arms":[{"name":"a","weight":1},{"name":"b","weight":1}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ctl.Act(ctx, s.ID, "start", "test", 0); err != nil {
			t.Fatal(err)
		}
		m := &jobs.Monitor{Control: ctl, Reader: &banditLog{}, Alpha: 0.05, DryRun: dry, Progress: t.Logf, Now: clk.Now}
		rep, err := m.Analyze(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		e := rep.Experiments[0]
		if e.Error != "" || e.Bandit == nil || len(e.Report.Arms) != 0 {
			t.Fatalf("dry %v: entry error %q, bandit report %v, fixed-split arms %d; want a bandit report only", dry, e.Error, e.Bandit, len(e.Report.Arms))
		}
		if d := e.Bandit.Arms[1].Delta; d == nil || d.Value < 0.45 || d.Value > 0.55 {
			t.Errorf("dry %v: delta of b = %v, want 0.5 (0.8 - 0.3)", dry, d)
		}
		got, _ := ctl.Experiment(ctx, s.ID)
		if dry {
			if got.Bandit.Epoch != 0 || e.Applied {
				t.Errorf("dry run: epoch %d, applied %v; want nothing changed", got.Bandit.Epoch, e.Applied)
			}
			continue
		}
		if w := got.Bandit.Weights[""]; !e.Applied || got.Bandit.Epoch != 1 || len(w) != 2 || w[1] < 0.9 {
			t.Errorf("after the monitor: applied %v, epoch %d, weights %v; want epoch 1 with b near 0.95", e.Applied, got.Bandit.Epoch, w)
		}
	}
}
