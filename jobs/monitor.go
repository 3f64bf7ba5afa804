package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/routelab/routelab/experiments"
)

// LookReader reads an experiment's arms and keeps its looks: each
// judgement is a look whose always-valid results join the running ones
// (experiments/clickhouse.Reader).
type LookReader interface {
	ArmReader
	Look(ctx context.Context, s experiments.Spec, alpha float64, rep *experiments.Report, record bool, at time.Time) error
}

// AnalyzeEntry is one experiment in the analyze job's report.
type AnalyzeEntry struct {
	Experiment string              `json:"experiment"`
	Verdict    experiments.Verdict `json:"verdict"`
	Applied    bool                `json:"applied"` // the ramp or rollback was written
	Error      string              `json:"error,omitempty"`
	Report     experiments.Report  `json:"report"`
	// Bandit is a bandit experiment's analysis (by logged propensities);
	// its Report stays empty: the fixed-split statistics do not apply.
	Bandit *experiments.BanditReport `json:"bandit,omitempty"`
}

// BanditReader reads a bandit experiment's logged (stratum, arm,
// propensity) groups (experiments/clickhouse.Reader does).
type BanditReader interface {
	BanditGroups(ctx context.Context, s experiments.Spec) ([]experiments.LoggedGroup, error)
}

// BanditControl hands a bandit's outcomes to the control plane, which
// re-weights it when its schedule is due (server/client.Admin does).
type BanditControl interface {
	Reweight(ctx context.Context, id string, outcomes map[string][]experiments.ArmOutcomes) (experiments.Spec, error)
}

// AnalyzeReport is the analyze job's report.
type AnalyzeReport struct {
	At          int64          `json:"at_ms"`
	Experiments []AnalyzeEntry `json:"experiments"`
	ElapsedMS   int64          `json:"elapsed_ms"`
}

// Monitor is the guardrail monitor: it analyses running experiments and
// applies experiments.Judge's verdict through the admin API, advancing a
// canary's ramp or rolling it back on a breach.
type Monitor struct {
	Control  ExperimentControl
	Reader   LookReader
	Alpha    float64
	DryRun   bool // judge and report, but neither ramp nor roll back (nor record the look)
	Progress func(string, ...any)
	Now      func() time.Time
}

// Analyze judges experiment only, or every running one when only is "".
func (m *Monitor) Analyze(ctx context.Context, only string) (AnalyzeReport, error) {
	start := m.Now()
	var specs []experiments.Spec
	if only != "" {
		sp, err := m.Control.Experiment(ctx, only)
		if err != nil {
			return AnalyzeReport{}, err
		}
		specs = append(specs, sp)
	} else {
		var err error
		if specs, err = m.Control.Experiments(ctx, string(experiments.StatusRunning)); err != nil {
			return AnalyzeReport{}, err
		}
	}
	rep := AnalyzeReport{At: start.UnixMilli()}
	for _, sp := range specs {
		rep.Experiments = append(rep.Experiments, m.One(ctx, sp))
	}
	rep.ElapsedMS = m.Now().Sub(start).Milliseconds()
	m.Progress("analyze: %d experiments in %d ms", len(rep.Experiments), rep.ElapsedMS)
	return rep, nil
}

// One analyses one experiment and applies the verdict.
func (m *Monitor) One(ctx context.Context, sp experiments.Spec) AnalyzeEntry {
	if sp.Kind == experiments.KindBandit {
		return m.bandit(ctx, sp)
	}
	e := AnalyzeEntry{Experiment: sp.ID}
	t := m.Now()
	data, err := m.Reader.Arms(ctx, sp)
	if err != nil {
		e.Error = err.Error()
		m.Progress("analyze: %s: %v", sp.ID, err)
		return e
	}
	e.Report = experiments.Analyze(sp, data, m.Alpha)
	e.Report.QueryMS = m.Now().Sub(t).Milliseconds()
	// Judge does not read the looks, so a failure here only loses the look.
	if err := m.Reader.Look(ctx, sp, m.Alpha, &e.Report, !m.DryRun, m.Now()); err != nil {
		m.Progress("analyze: %s: looks: %v", sp.ID, err)
	}
	e.Verdict = experiments.Judge(sp, e.Report, m.Now())
	m.Progress("analyze: %s: %.0f units, srm p %.3g: %s (%s)", sp.ID, e.Report.Units, e.Report.SRMPValue, e.Verdict.Action, e.Verdict.Reason)
	if m.DryRun || e.Verdict.Action == experiments.ActionHold {
		return e
	}
	action := "rollback"
	if e.Verdict.Action == experiments.ActionAdvance {
		action = "ramp"
	}
	after, err := m.Control.Act(ctx, sp.ID, action, e.Verdict.Reason, e.Verdict.Next)
	if err != nil {
		e.Error = err.Error()
		m.Progress("analyze: %s: %s failed: %v", sp.ID, e.Verdict.Action, err)
		return e
	}
	e.Applied = true
	m.Progress("analyze: %s: %s applied: status %s, traffic %g", sp.ID, e.Verdict.Action, after.Status, after.Traffic)
	return e
}

// bandit is One for a bandit experiment: it reads the logged groups when
// its Reader is a BanditReader, analyses them by their propensities, and
// hands the outcomes to the control plane when its Control is a
// BanditControl, which re-weights on the bandit's schedule. A bandit has
// no ramp, and its guardrails are not judged by the fixed-split
// comparisons, whose shares it does not keep.
func (m *Monitor) bandit(ctx context.Context, sp experiments.Spec) AnalyzeEntry {
	e := AnalyzeEntry{Experiment: sp.ID, Verdict: experiments.Verdict{Experiment: sp.ID, Action: experiments.ActionHold, Traffic: sp.Traffic}}
	br, ok := m.Reader.(BanditReader)
	if !ok {
		e.Error = "the reader cannot read bandit outcomes"
		return e
	}
	groups, err := br.BanditGroups(ctx, sp)
	if err != nil {
		e.Error = err.Error()
		m.Progress("analyze: %s: %v", sp.ID, err)
		return e
	}
	rep := experiments.AnalyzeBandit(sp, groups, m.Alpha)
	e.Bandit = &rep
	e.Verdict.Reason = fmt.Sprintf("bandit at epoch %d", sp.Bandit.Epoch)
	bc, ok := m.Control.(BanditControl)
	if m.DryRun || !ok || sp.Status != experiments.StatusRunning {
		return e
	}
	after, err := bc.Reweight(ctx, sp.ID, experiments.Outcomes(groups, len(sp.Arms)))
	if err != nil {
		e.Error = err.Error()
		m.Progress("analyze: %s: reweight failed: %v", sp.ID, err)
		return e
	}
	if after.Bandit != nil && after.Bandit.Epoch != sp.Bandit.Epoch {
		e.Applied = true
		e.Verdict.Reason = fmt.Sprintf("bandit re-weighted to epoch %d: %v", after.Bandit.Epoch, after.Bandit.Weights)
		rep.Epoch, rep.Weights = after.Bandit.Epoch, after.Bandit.Weights
	}
	m.Progress("analyze: %s: %d requests: %s", sp.ID, rep.Requests, e.Verdict.Reason)
	return e
}

// Watch runs the monitor over the running experiments every interval until
// ctx ends, logging what it did (routelab dev runs it beside serve).
func (m *Monitor) Watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		specs, err := m.Control.Experiments(ctx, string(experiments.StatusRunning))
		if err != nil {
			log.Warn("list running experiments", "err", err)
			continue
		}
		for _, sp := range specs {
			e := m.One(ctx, sp)
			switch {
			case e.Error != "":
				log.Warn("experiment not judged", "experiment", sp.ID, "action", e.Verdict.Action, "err", e.Error)
			case e.Verdict.Action != experiments.ActionHold:
				log.Info("experiment "+string(e.Verdict.Action), "experiment", sp.ID, "reason", e.Verdict.Reason, "traffic", e.Verdict.Traffic, "next", e.Verdict.Next)
			}
		}
	}
}
