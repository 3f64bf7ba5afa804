package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/routelab/routelab/experiments"
)

// Batcher is what recording looks needs beyond Querier: a clickhouse-go
// connection (driver.Conn) has it.
type Batcher interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// PriorLooks returns the running always-valid result over the looks
// recorded so far at s's current phase and alpha, per treatment arm and
// metric (none when the experiment_looks table, migration 0051, is absent).
func (r *Reader) PriorLooks(ctx context.Context, s experiments.Spec, alpha float64) (map[experiments.LookKey]experiments.Look, error) {
	out := map[experiments.LookKey]experiments.Look{}
	if ok, err := r.hasLooks(ctx); err != nil || !ok {
		return out, err
	}
	rows, err := r.conn.Query(ctx, fmt.Sprintf(`SELECT arm, metric, min(p_value), max(ci_low), min(ci_high)
FROM %s.experiment_looks WHERE experiment = ? AND phase = ? AND alpha = ? GROUP BY arm, metric`, r.db), s.ID, int32(s.Phase), alpha)
	if err != nil {
		return nil, fmt.Errorf("query looks of %s: %w", s.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k experiments.LookKey
		var l experiments.Look
		if err := rows.Scan(&k.Arm, &k.Metric, &l.PValue, &l.CILow, &l.CIHigh); err != nil {
			return nil, fmt.Errorf("scan looks of %s: %w", s.ID, err)
		}
		out[k] = l
	}
	return out, rows.Err()
}

// RecordLook appends this look's own always-valid results (rep.Looks(),
// before ApplyLooks) at s's current phase. It needs a connection that is
// also a Batcher; without the table it records nothing.
func (r *Reader) RecordLook(ctx context.Context, s experiments.Spec, alpha float64, looks map[experiments.LookKey]experiments.Look, at time.Time) error {
	b, ok := r.conn.(Batcher)
	if !ok || len(looks) == 0 {
		return nil
	}
	if ok, err := r.hasLooks(ctx); err != nil || !ok {
		return err
	}
	batch, err := b.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.experiment_looks (experiment, phase, arm, metric, alpha, ts_ms, p_value, ci_low, ci_high)", r.db))
	if err != nil {
		return fmt.Errorf("record look of %s: %w", s.ID, err)
	}
	for k, l := range looks {
		if err := batch.Append(s.ID, int32(s.Phase), k.Arm, k.Metric, alpha, uint64(at.UnixMilli()), l.PValue, l.CILow, l.CIHigh); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("record look of %s: %w", s.ID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record look of %s: %w", s.ID, err)
	}
	return nil
}

// Look makes rep (this look's analysis of s) report running always-valid
// results over the looks recorded so far at s's phase, and with record
// also records this look: what every judgement of an experiment does
// (experiments results, the guardrail monitor; a dry run does not record).
func (r *Reader) Look(ctx context.Context, s experiments.Spec, alpha float64, rep *experiments.Report, record bool, at time.Time) error {
	prior, err := r.PriorLooks(ctx, s, alpha)
	if err != nil {
		return err
	}
	look := rep.Looks()
	rep.ApplyLooks(prior)
	if !record {
		return nil
	}
	return r.RecordLook(ctx, s, alpha, look, at)
}

func (r *Reader) hasLooks(ctx context.Context) (bool, error) {
	n, err := r.count(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'experiment_looks'", r.db)
	return n == 1, err
}
