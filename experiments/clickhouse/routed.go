package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/routelab/routelab/experiments"
)

// Routed counts the decisions of arm in s's current phase, and those of
// them routed by policy version: a canary arm whose version no replica
// could find routes with the live policy instead.
func (r *Reader) Routed(ctx context.Context, s experiments.Spec, arm, version string) (total, byVersion uint64, err error) {
	q := fmt.Sprintf(`SELECT count(), countIf(policy_version = ?) FROM %s.decisions
		PREWHERE has(arm_experiments, ?) WHERE ts >= toDateTime(?) AND arm_names[indexOf(arm_experiments, ?)] = ? AND arm_phases[indexOf(arm_experiments, ?)] = ?`, r.db)
	err = r.conn.QueryRow(ctx, q, version, s.ID, time.UnixMilli(s.PhaseStarted).Unix(), s.ID, arm, s.ID, int32(s.Phase)).Scan(&total, &byVersion)
	if err != nil {
		return 0, 0, fmt.Errorf("count %s decisions of %s: %w", arm, s.ID, err)
	}
	return total, byVersion, nil
}

// Report analyses s's current phase at alpha. Each call is a look: its
// always-valid results are recorded, and the ones reported run over every
// look at the phase so far (experiments.Report.ApplyLooks).
func (r *Reader) Report(ctx context.Context, s experiments.Spec, alpha float64, at time.Time) (experiments.Report, error) {
	data, err := r.Arms(ctx, s)
	if err != nil {
		return experiments.Report{}, err
	}
	rep := experiments.Analyze(s, data, alpha)
	if err := r.Look(ctx, s, alpha, &rep, true, at); err != nil {
		return experiments.Report{}, err
	}
	cs, err := r.CostSpeed(ctx, s, s.LatencyBudgets())
	if err != nil {
		return experiments.Report{}, err
	}
	rep.CostSpeed = experiments.AnalyzeCostSpeed(s, cs, alpha)
	rep.LatencyBudgets = s.LatencyBudgets().String()
	return rep, nil
}
