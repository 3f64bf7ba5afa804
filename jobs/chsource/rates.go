package chsource

import (
	"context"
	"fmt"
	"time"

	"github.com/routelab/routelab/jobs"
)

// Rates aggregates the window into buckets of step, in time order: counts
// of QA failures and escalations and a latency histogram from one pass over
// the decisions, and the thumbs-down and regenerate signals received in
// each bucket from the (much smaller) signals table. Signals are bucketed by
// their own time, not joined to their request: the join hashed every
// decision's request id, the costliest part of the drift job at 10M
// decisions, and a feedback signal trails its request by seconds. The
// latency histogram lets the caller pick the slowness threshold from a
// baseline without a second scan.
func (s *Store) Rates(ctx context.Context, w jobs.Window, step time.Duration) ([]jobs.RateBucket, error) {
	stepMS := max(step.Milliseconds(), 1)
	q := fmt.Sprintf(`SELECT intDiv(ts_ms, %[1]d) AS b, toUInt8(least(floor(4 * log2(toFloat64(greatest(latency_ms, 0)) + 1)), %[4]d)) AS lb,
  count(), sum(qa_pass = 0), sum(escalated)
FROM %[2]s WHERE %[3]s
GROUP BY b, lb ORDER BY b`, stepMS, s.decisions(), where(w, "ts_ms"), jobs.LatBins-1)
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("rates: %w", err)
	}
	defer rows.Close()
	var out []jobs.RateBucket
	at := map[uint64]int{}
	for rows.Next() {
		var b, n, qf, esc uint64
		var lb uint8
		if err := rows.Scan(&b, &lb, &n, &qf, &esc); err != nil {
			return nil, fmt.Errorf("rates: %w", err)
		}
		start := time.UnixMilli(int64(b) * stepMS)
		if len(out) == 0 || !out[len(out)-1].Start.Equal(start) {
			at[b] = len(out)
			out = append(out, jobs.RateBucket{Start: start, Lat: make([]float64, jobs.LatBins)})
		}
		r := &out[len(out)-1]
		r.N += float64(n)
		r.QAFail += float64(qf)
		r.Escalated += float64(esc)
		r.Lat[min(int(lb), jobs.LatBins-1)] += float64(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rates: %w", err)
	}
	rows.Close()
	sq := fmt.Sprintf(`SELECT intDiv(ts_ms, %[1]d) AS b, countIf(signal = 'thumbs_down'), countIf(signal = 'regenerate')
FROM %[2]s.signals WHERE %[3]s AND signal IN ('thumbs_down', 'regenerate') GROUP BY b`, stepMS, s.DB, where(w, "ts_ms"))
	srows, err := s.Conn.Query(ctx, sq)
	if err != nil {
		return nil, fmt.Errorf("rates: signals: %w", err)
	}
	defer srows.Close()
	for srows.Next() {
		var b, td, rg uint64
		if err := srows.Scan(&b, &td, &rg); err != nil {
			return nil, fmt.Errorf("rates: signals: %w", err)
		}
		// a bucket without decisions has no rate to add its signals to
		if i, ok := at[b]; ok {
			// a rate is at most one per decision
			out[i].ThumbsDown = min(out[i].ThumbsDown+float64(td), out[i].N)
			out[i].Regenerated = min(out[i].Regenerated+float64(rg), out[i].N)
		}
	}
	return out, srows.Err()
}
