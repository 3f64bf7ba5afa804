package clickhouse

import (
	"context"
	"fmt"

	"github.com/routelab/routelab/experiments"
)

// banditY is the per-request value of a bandit's primary metric; thumbs
// count once per request (up and down come from the signals join).
func banditY(metric string) string {
	switch metric {
	case "thumbs_up_rate":
		return "least(up, 1)"
	case "thumbs_down_rate":
		return "least(down, 1)"
	case "cost_per_image":
		return "cost_usd"
	}
	for _, n := range numerators {
		if n.metric == metric {
			return n.expr
		}
	}
	return "0"
}

// BanditGroups reads a bandit experiment's current phase as (stratum, arm,
// propensity) groups of its primary metric's per-request values: what
// Reweight (summed over propensities) and AnalyzeBandit read. Propensity
// is the weight logged with each assignment (decisions.arm_propensities),
// so the groups are as many as the epochs' distinct weights, whatever the
// traffic.
func (r *Reader) BanditGroups(ctx context.Context, s experiments.Spec) ([]experiments.LoggedGroup, error) {
	ps, err := r.setup(ctx, s)
	if err != nil {
		return nil, err
	}
	pq := r.phase(s, ps.since)
	args := append([]any{}, pq.args...)
	cols, join := "toUInt64(0) AS up, toUInt64(0) AS down", ""
	if ps.signals > 0 {
		cols = "up, down"
		join = fmt.Sprintf(`ANY LEFT JOIN (
		SELECT cityHash64(request_id) AS rid, countIf(signal = 'thumbs_up') AS up, countIf(signal = 'thumbs_down') AS down
		FROM %s.signals WHERE ts >= toDateTime(?) GROUP BY rid
	) USING rid`, r.db)
		args = append(args, ps.since.Unix())
	}
	q := fmt.Sprintf(`
SELECT stratum, a, p, count(), sum(y), sum(y * y) FROM (
	SELECT stratum, a, p, toFloat64(%[1]s) AS y FROM (
		SELECT stratum, a, p, status, qa_pass, escalated, latency_ms, cost_usd, %[2]s
		FROM (
			SELECT arm_strata[idx] AS stratum, toUInt64(%[3]s) AS a, arm_propensities[idx] AS p, cityHash64(request_id) AS rid,
				status, qa_pass, escalated, latency_ms, cost_usd
			FROM %[4]s
		)
		%[5]s
	)
)
WHERE a > 0
GROUP BY stratum, a, p
ORDER BY stratum, a, p`, banditY(s.PrimaryMetric), cols, pq.armIndex, pq.from, join)
	rows, err := r.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("bandit groups of %s: %w", s.ID, err)
	}
	defer rows.Close()
	var out []experiments.LoggedGroup
	for rows.Next() {
		var (
			g   experiments.LoggedGroup
			a   uint64
			n   uint64
			st  string
			p   float64
			sum float64
			ss  float64
		)
		if err := rows.Scan(&st, &a, &p, &n, &sum, &ss); err != nil {
			return nil, fmt.Errorf("bandit groups of %s: %w", s.ID, err)
		}
		g.Stratum, g.Arm, g.Propensity, g.N, g.Sum, g.SumSq = st, int(a)-1, p, float64(n), sum, ss
		out = append(out, g)
	}
	return out, rows.Err()
}
