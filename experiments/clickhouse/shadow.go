package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/routelab/routelab/experiments"
)

// ShadowStratum compares the live requests of a shadow experiment with
// their mirrors in one feature group (edit, text, image), over the pairs.
type ShadowStratum struct {
	Group         string  `json:"group"`
	Pairs         uint64  `json:"pairs"`
	LiveQAPass    float64 `json:"live_qa_pass"`
	ShadowQAPass  float64 `json:"shadow_qa_pass"`
	LiveCost      float64 `json:"live_cost_usd"`
	ShadowCost    float64 `json:"shadow_cost_usd"`
	LiveLatency   float64 `json:"live_latency_ms"`
	ShadowLatency float64 `json:"shadow_latency_ms"`
}

// ShadowComparison pairs each mirror of shadow experiment s (decisions with
// shadow = 1 carrying its arm) with its live request (live_request_id) and
// compares them per feature group: the share served and passing QA, cost
// and latency.
func (r *Reader) ShadowComparison(ctx context.Context, s experiments.Spec) ([]ShadowStratum, error) {
	since := time.UnixMilli(s.PhaseStarted).UTC()
	q := fmt.Sprintf(`
SELECT grp, count(), avg(l_ok), avg(s_ok), avg(l_cost), avg(s_cost), avg(l_lat), avg(s_lat) FROM (
	SELECT live_request_id AS rid, toFloat64(status = 'ok' AND qa_pass = 1) AS s_ok, cost_usd AS s_cost, toFloat64(latency_ms) AS s_lat
	FROM %[1]s.decisions PREWHERE shadow = 1 WHERE has(arm_experiments, ?) AND ts >= toDateTime(?)
) ANY INNER JOIN (
	SELECT request_id AS rid, multiIf(mode = 'edit', 'edit', text_heavy = 1, 'text', 'image') AS grp,
		toFloat64(status = 'ok' AND qa_pass = 1) AS l_ok, cost_usd AS l_cost, toFloat64(latency_ms) AS l_lat
	FROM %[1]s.decisions PREWHERE shadow = 0 WHERE ts >= toDateTime(?)
) USING rid
GROUP BY grp
ORDER BY grp`, r.db)
	rows, err := r.conn.Query(ctx, q, s.ID, since.Unix(), since.Unix())
	if err != nil {
		return nil, fmt.Errorf("shadow comparison of %s: %w", s.ID, err)
	}
	defer rows.Close()
	var out []ShadowStratum
	for rows.Next() {
		var x ShadowStratum
		if err := rows.Scan(&x.Group, &x.Pairs, &x.LiveQAPass, &x.ShadowQAPass, &x.LiveCost, &x.ShadowCost, &x.LiveLatency, &x.ShadowLatency); err != nil {
			return nil, fmt.Errorf("shadow comparison of %s: %w", s.ID, err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// WeightsAt is a bandit's weights in force from a time on.
type WeightsAt struct {
	At      time.Time
	Epoch   int
	Weights map[string][]float64 // stratum -> weight per arm
}

// BanditWeights is the history of a bandit's weights: every re-weighting
// the control plane audited (action bandit.reweight, its body the spec
// written), oldest first.
func (r *Reader) BanditWeights(ctx context.Context, s experiments.Spec) ([]WeightsAt, error) {
	rows, err := r.conn.Query(ctx, fmt.Sprintf(
		"SELECT ts_ms, body FROM %s.audit WHERE action = 'bandit.reweight' AND subject = ? ORDER BY ts_ms", r.db), s.ID)
	if err != nil {
		return nil, fmt.Errorf("bandit weights of %s: %w", s.ID, err)
	}
	defer rows.Close()
	var out []WeightsAt
	for rows.Next() {
		var (
			ms   uint64
			body string
		)
		if err := rows.Scan(&ms, &body); err != nil {
			return nil, fmt.Errorf("bandit weights of %s: %w", s.ID, err)
		}
		var sp experiments.Spec
		if err := json.Unmarshal([]byte(body), &sp); err != nil || sp.Bandit == nil || sp.Phase != s.Phase {
			continue // another phase, or not a spec
		}
		out = append(out, WeightsAt{At: time.UnixMilli(int64(ms)).UTC(), Epoch: sp.Bandit.Epoch, Weights: sp.Bandit.Weights})
	}
	return out, rows.Err()
}
