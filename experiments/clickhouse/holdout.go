package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/routelab/routelab/experiments"
)

// Holdout reads a holdout's primary metric per request inside it and in the
// rest of the live traffic (shadow mirrors aside) since its phase started,
// and reports the difference (experiments.HoldoutEffect). The metric must
// be a per-request rate of the decision itself (success, QA pass or fail,
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
	since := time.UnixMilli(s.PhaseStarted).UTC()
	q := fmt.Sprintf(`
SELECT has(arm_experiments, ?) AS inside, toFloat64(count()), toFloat64(sum(%s))
FROM %s.decisions PREWHERE shadow = 0 WHERE ts >= toDateTime(?)
GROUP BY inside`, expr, r.db)
	rows, err := r.conn.Query(ctx, q, s.ID, since.Unix())
	if err != nil {
		return experiments.HoldoutReport{}, fmt.Errorf("holdout %s: %w", s.ID, err)
	}
	defer rows.Close()
	var xh, nh, xr, nr float64
	for rows.Next() {
		var (
			inside uint8
			n, x   float64
		)
		if err := rows.Scan(&inside, &n, &x); err != nil {
			return experiments.HoldoutReport{}, fmt.Errorf("holdout %s: %w", s.ID, err)
		}
		if inside == 1 {
			xh, nh = x, n
		} else {
			xr, nr = x, n
		}
	}
	if err := rows.Err(); err != nil {
		return experiments.HoldoutReport{}, fmt.Errorf("holdout %s: %w", s.ID, err)
	}
	return experiments.HoldoutEffect(s, xh, nh, xr, nr, alpha), nil
}
