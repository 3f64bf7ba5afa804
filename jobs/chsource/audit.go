package chsource

import (
	"context"
	"fmt"
	"time"

	"github.com/routelab/routelab/events"
)

// Audit writes one audit row (the job's report as its body) into the audit
// table, for history and the console.
func (s *Store) Audit(ctx context.Context, a events.Audit) error {
	b, err := s.Conn.PrepareBatch(ctx, "INSERT INTO "+s.DB+".audit (event_id, schema_version, request_id, tenant, ts, ts_ms, action, subject, actor, body)")
	if err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	if err := b.Append(a.EventID, uint16(a.SchemaVersion), a.RequestID, a.Tenant, time.UnixMilli(a.TS), uint64(a.TS), a.Action, a.Subject, a.Actor, a.Body); err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	return nil
}

// AuditRows reads the audit rows of action prefix, newest first.
func (s *Store) AuditRows(ctx context.Context, actionPrefix string, limit int) ([]events.Audit, error) {
	q := fmt.Sprintf("SELECT event_id, ts_ms, action, subject, actor, body FROM %s.audit WHERE startsWith(action, %s) ORDER BY ts_ms DESC LIMIT %d", s.DB, quote(actionPrefix), limit)
	rows, err := s.Conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit rows: %w", err)
	}
	defer rows.Close()
	var out []events.Audit
	for rows.Next() {
		var a events.Audit
		var ts uint64
		if err := rows.Scan(&a.EventID, &ts, &a.Action, &a.Subject, &a.Actor, &a.Body); err != nil {
			return nil, fmt.Errorf("audit rows: %w", err)
		}
		a.TS = int64(ts)
		out = append(out, a)
	}
	return out, rows.Err()
}
