package clickhouse

import (
	"context"
	"fmt"

	"github.com/routelab/routelab/experiments"
)

// CostSpeed reads every arm's per-unit sums of successes, cost, requests
// and successes within the latency budget (the request's max_latency_ms,
// else its tier's budget in b) over the experiment's current phase.
func (r *Reader) CostSpeed(ctx context.Context, s experiments.Spec, b experiments.LatencyBudgets) ([]experiments.CostSpeedArm, error) {
	ps, err := r.setup(ctx, s)
	if err != nil {
		return nil, err
	}
	pq := r.phase(s, ps.since)
	budget := fmt.Sprintf("if(max_latency_ms > 0, max_latency_ms, transform(tier, ['draft', 'premium'], [%d, %d], %d))",
		b.Draft.Milliseconds(), b.Premium.Milliseconds(), b.Standard.Milliseconds())
	q := fmt.Sprintf(`
SELECT a, count(), sum(succ), sum(succ * succ), sum(cost), sum(cost * cost), sum(succ * cost),
	sum(fast), sum(fast * fast), sum(req), sum(req * req), sum(fast * req)
FROM (
	SELECT a, u, toFloat64(countIf(status = 'ok' AND qa_pass = 1)) AS succ,
		toFloat64(countIf(status = 'ok' AND qa_pass = 1 AND latency_ms <= lim)) AS fast,
		toFloat64(sum(cost_usd)) AS cost, toFloat64(count()) AS req
	FROM (
		SELECT toUInt64(%[1]s) AS a, toString(%[2]s) AS u, status, qa_pass, cost_usd, latency_ms, %[3]s AS lim
		FROM %[4]s
	)
	GROUP BY a, u
)
WHERE a > 0
GROUP BY a
ORDER BY a`, pq.armIndex, pq.unitCol, budget, pq.from)
	rows, err := r.conn.Query(ctx, q, pq.args...)
	if err != nil {
		return nil, fmt.Errorf("cost and speed of %s: %w", s.ID, err)
	}
	defer rows.Close()
	var out []experiments.CostSpeedArm
	for rows.Next() {
		var (
			a, n uint64
			v    [10]float64
		)
		dest := []any{&a, &n}
		for i := range v {
			dest = append(dest, &v[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("cost and speed of %s: %w", s.ID, err)
		}
		if a < 1 || a > uint64(len(s.Arms)) {
			continue
		}
		units := float64(n)
		out = append(out, experiments.CostSpeedArm{
			Arm:              s.Arms[a-1].Name,
			SuccessPerDollar: experiments.RatioMoments{N: units, SumX: v[0], SumXX: v[1], SumY: v[2], SumYY: v[3], SumXY: v[4]},
			InBudget:         experiments.RatioMoments{N: units, SumX: v[5], SumXX: v[6], SumY: v[7], SumYY: v[8], SumXY: v[9]},
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cost and speed of %s: %w", s.ID, err)
	}
	return out, nil
}
