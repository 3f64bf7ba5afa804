package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/routelab/routelab/experiments"
)

// Holdout reads a holdout's primary metric per unit inside it and in the
// rest of the live traffic (shadow mirrors aside) since its phase started,
// overall, per day and (for the rest) per serving policy version, and
// reports the differences (experiments.HoldoutEffect). The metric must be a
// per-request rate of the decision itself (success, QA pass or fail,
// errors, escalations).
func (r *Reader) Holdout(ctx context.Context, s experiments.Spec, alpha float64) (experiments.HoldoutReport, error) {
	expr := ""
	for _, n := range numerators {
		if n.metric == s.PrimaryMetric && n.col != "up" && n.col != "down" && n.col != "lat" {
			expr = n.expr
		}
	}
	if expr == "" {
		return experiments.HoldoutReport{}, fmt.Errorf("holdout %s: primary metric %s is not a per-request rate of the decisions", s.ID, s.PrimaryMetric)
	}
	unit := r.phase(s, time.Time{}).unitCol
	d := experiments.HoldoutData{HoldoutDaily: map[string]experiments.RatioMoments{}, RestDaily: map[string]experiments.RatioMoments{},
		RestByPolicyVersion: map[string]experiments.RatioMoments{}}
	for _, g := range []struct {
		key string // the slice a unit's sums are taken within
		add func(inside bool, key string, m experiments.RatioMoments)
	}{
		{"''", func(inside bool, _ string, m experiments.RatioMoments) {
			if inside {
				d.Holdout = m
			} else {
				d.Rest = m
			}
		}},
		{"toString(toDate(ts))", func(inside bool, day string, m experiments.RatioMoments) {
			if inside {
				d.HoldoutDaily[day] = m
			} else {
				d.RestDaily[day] = m
			}
		}},
		{"policy_version", func(inside bool, v string, m experiments.RatioMoments) {
			if !inside {
				d.RestByPolicyVersion[v] = m
			}
		}},
	} {
		if err := r.holdoutMoments(ctx, s, expr, unit, g.key, g.add); err != nil {
			return experiments.HoldoutReport{}, err
		}
	}
	return experiments.HoldoutEffect(s, d, alpha), nil
}

// holdoutMoments sums per unit within each (inside, key) slice, and hands
// each slice's moments to add. A decision without a unit is its own unit.
func (r *Reader) holdoutMoments(ctx context.Context, s experiments.Spec, expr, unit, key string, add func(bool, string, experiments.RatioMoments)) error {
	q := fmt.Sprintf(`
SELECT inside, k, toFloat64(count()), sum(x), sum(x * x), sum(n), sum(n * n), sum(x * n)
FROM (
	SELECT has(arm_experiments, ?) AS inside, %[1]s AS k, if(%[2]s = '', request_id, toString(%[2]s)) AS u,
		toFloat64(sum(%[3]s)) AS x, toFloat64(count()) AS n
	FROM %[4]s.decisions PREWHERE shadow = 0 WHERE ts >= toDateTime(?)
	GROUP BY inside, k, u
)
GROUP BY inside, k`, key, unit, expr, r.db)
	since := time.UnixMilli(s.PhaseStarted).UTC()
	rows, err := r.conn.Query(ctx, q, s.ID, since.Unix())
	if err != nil {
		return fmt.Errorf("holdout %s by %s: %w", s.ID, key, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			inside uint8
			k      string
			m      experiments.RatioMoments
		)
		if err := rows.Scan(&inside, &k, &m.N, &m.SumX, &m.SumXX, &m.SumY, &m.SumYY, &m.SumXY); err != nil {
			return fmt.Errorf("holdout %s by %s: %w", s.ID, key, err)
		}
		add(inside == 1, k, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("holdout %s by %s: %w", s.ID, key, err)
	}
	return nil
}
