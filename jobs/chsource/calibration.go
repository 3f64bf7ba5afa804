package chsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/router"
)

// labelledWhere keeps the labelled decisions of a policy version.
func labelledWhere(policyVersion string) string {
	return "policy_version = " + quote(policyVersion) + " AND propensity > 0 AND " + labelledFirst
}

// CalibrationBins aggregates the labelled decisions of policyVersion in the
// window into fine bins (100 per model) of the routed model's logged
// calibrated P, inverse-propensity weighted.
func (s *Store) CalibrationBins(ctx context.Context, w jobs.Window, policyVersion string) ([]jobs.CalBin, error) {
	lab := s.labelled(w, []string{
		"model", routedExpr,
		"1 / propensity AS w",
		"candidate_p[indexOf(candidate_models, routed)] AS p",
		holdoutExpr,
	}, labelledWhere(policyVersion)+" AND indexOf(candidate_models, "+strings.TrimSuffix(routedExpr, " AS routed")+") > 0", "")
	q := `SELECT routed, toUInt32(least(floor(p * 100), 99)) AS bin, holdout,
  count() AS n, sum(w) AS sw, sum(w * yr) AS swy, sum(w * p) AS swp, sum(w * p * p) AS swpp, sum(w * yr * p) AS swyp
FROM (SELECT routed, p, w, holdout, ` + routedY + ` AS yr FROM (` + lab + `))
GROUP BY routed, bin, holdout ORDER BY routed, bin, holdout`
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("calibration bins: %w", err)
	}
	defer rows.Close()
	var out []jobs.CalBin
	for rows.Next() {
		var b jobs.CalBin
		var bin uint32
		var hold uint8
		var n uint64
		if err := rows.Scan(&b.Model, &bin, &hold, &n, &b.W, &b.WY, &b.WP, &b.WPP, &b.WYP); err != nil {
			return nil, fmt.Errorf("calibration bins: %w", err)
		}
		b.Bin, b.Holdout, b.N = int(bin), hold == 1, float64(n)
		out = append(out, b)
	}
	return out, rows.Err()
}

// Rows reads up to limit labelled decisions of policyVersion in the window
// with the candidates they were chosen among, in a deterministic hash
// sample when there are more: the rule audit and the threshold search
// replay these.
func (s *Store) Rows(ctx context.Context, w jobs.Window, policyVersion string, limit int) ([]jobs.Row, error) {
	key, err := s.sample(ctx, w, policyVersion, limit, false)
	if err != nil {
		return nil, err
	}
	lab := s.labelled(w, []string{"request_id", "tier", "rule", "model", routedExpr, "propensity", "candidate_models", "candidate_p",
		"candidate_cost_usd", "candidate_eligible", "if(empty(attempt_latency_ms), toInt64(0), attempt_latency_ms[1]) AS lat",
		holdoutExpr}, labelledWhere(policyVersion), key)
	q := "SELECT request_id, tier, rule, routed, propensity, candidate_models, candidate_p, candidate_cost_usd, candidate_eligible, lat, holdout, " + routedY + " FROM (" + lab + ")"
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("decision rows: %w", err)
	}
	defer rows.Close()
	var out []jobs.Row
	for rows.Next() {
		var r jobs.Row
		var tier string
		var models []string
		var ps, costs []float64
		var elig []uint8
		var lat int64
		var hold, y uint8
		if err := rows.Scan(&r.ID, &tier, &r.Rule, &r.Model, &r.Propensity, &models, &ps, &costs, &elig, &lat, &hold, &y); err != nil {
			return nil, fmt.Errorf("decision rows: %w", err)
		}
		r.Tier, r.Y, r.LatencyMS = router.Tier(tier), float64(y), float64(lat)
		r.HoldoutSet, r.HoldoutVal = true, hold == 1
		for i, m := range models {
			c := jobs.Cand{Model: m}
			if i < len(ps) {
				c.P = ps[i]
			}
			if i < len(costs) {
				c.Cost = costs[i]
			}
			if i < len(elig) {
				c.Eligible = elig[i] == 1
			}
			r.Cands = append(r.Cands, c)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Logged reads up to limit labelled decisions of policyVersion in the
// window, in a deterministic hash sample when there are more.
func (s *Store) Logged(ctx context.Context, w jobs.Window, policyVersion string, limit int, holdoutOnly bool) ([]jobs.Logged, error) {
	key, err := s.sample(ctx, w, policyVersion, limit, holdoutOnly)
	if err != nil {
		return nil, err
	}
	lab := s.labelled(w, []string{"request_id", "ts_ms", "tenant", "mode", "tier", "prompt", "ref_count", "edit_depth", "aspect",
		"text_heavy", "preserve_subject", "max_latency_ms", "max_cost_usd", "model", routedExpr, "propensity",
		"if(indexOf(candidate_models, routed) > 0, candidate_p[indexOf(candidate_models, routed)], 0) AS policy_p",
		"candidate_models", "candidate_cost_usd", holdoutExpr}, labelledWhere(policyVersion), key)
	q := "SELECT request_id, ts_ms, tenant, mode, tier, prompt, ref_count, edit_depth, aspect, text_heavy, preserve_subject, max_latency_ms, max_cost_usd, routed, propensity, policy_p, " + routedY + ", candidate_models, candidate_cost_usd, holdout FROM (" + lab + ") ORDER BY ts_ms"
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("logged decisions: %w", err)
	}
	defer rows.Close()
	var out []jobs.Logged
	for rows.Next() {
		var l jobs.Logged
		var ts uint64
		var refs, depth uint16
		var th, ps, y, hold uint8
		if err := rows.Scan(&l.RequestID, &ts, &l.Tenant, &l.Mode, &l.Tier, &l.Prompt, &refs, &depth, &l.Aspect, &th, &ps,
			&l.MaxLatency, &l.MaxCost, &l.Model, &l.Propensity, &l.PolicyP, &y, &l.CandModels, &l.CandCosts, &hold); err != nil {
			return nil, fmt.Errorf("logged decisions: %w", err)
		}
		l.TS, l.RefCount, l.EditDepth, l.TextHeavy, l.Preserve, l.Y = int64(ts), int(refs), int(depth), th == 1, ps == 1, float64(y)
		l.Holdout = hold == 1
		out = append(out, l)
	}
	return out, rows.Err()
}
