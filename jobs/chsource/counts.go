package chsource

import (
	"context"
	"fmt"
	"time"

	"github.com/routelab/routelab/jobs"
)

// Count is the number of decisions in the window (optionally of one policy).
func (s *Store) Count(ctx context.Context, w jobs.Window, policyVersion string) (uint64, error) {
	q := "SELECT count() FROM " + s.decisions() + " WHERE " + where(w, "ts_ms")
	if policyVersion != "" {
		q += " AND policy_version = " + quote(policyVersion)
	}
	var n uint64
	if err := s.Conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("count decisions: %w", err)
	}
	return n, nil
}

// RouteCounts counts policyVersion's decisions before t by served model.
func (s *Store) RouteCounts(ctx context.Context, policyVersion string, before time.Time) (map[string]float64, error) {
	return s.countsWhere(ctx, fmt.Sprintf("policy_version = %s AND ts_ms < %d", quote(policyVersion), before.UnixMilli()), FeatureExprs[jobs.FeatureModel])
}

// countsWhere counts the values of a categorical expression over the
// decisions matching cond.
func (s *Store) countsWhere(ctx context.Context, cond, expr string) (map[string]float64, error) {
	q := "SELECT toString(" + expr + ") AS v, count() FROM " + s.decisions() + " WHERE " + cond + " GROUP BY v"
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("counts %s: %w", expr, err)
	}
	defer rows.Close()
	out := map[string]float64{}
	for rows.Next() {
		var v string
		var n uint64
		if err := rows.Scan(&v, &n); err != nil {
			return nil, fmt.Errorf("counts %s: %w", expr, err)
		}
		out[v] = float64(n)
	}
	return out, rows.Err()
}

// EventCut is the time before which the first frac of the window's
// decisions fall (so a baseline holds events even when traffic is
// bursty), by ClickHouse's quantile (a reservoir sample: approximate);
// with no decisions, the time frac into the window.
func (s *Store) EventCut(ctx context.Context, w jobs.Window, frac float64) (time.Time, error) {
	var q float64
	var n uint64
	if err := s.Conn.QueryRow(ctx, fmt.Sprintf("SELECT toFloat64(quantile(%v)(ts_ms)), count() FROM %s WHERE %s", frac, s.decisions(), where(w, "ts_ms"))).Scan(&q, &n); err != nil {
		return time.Time{}, fmt.Errorf("window cut: %w", err)
	}
	if n == 0 || q != q {
		return w.From.Add(time.Duration(frac * float64(w.To.Sub(w.From)))), nil
	}
	return time.UnixMilli(int64(q)), nil
}
