package console

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/routelab/routelab/evaluator/qa"
)

// Data reads what the console shows from ClickHouse (the tables ingest
// writes; see ingest/migrations). Queries run on ClickHouse 18.16 and
// current releases.
type Data struct {
	conn driver.Conn
	db   string
}

// NewData reads from database db over conn.
func NewData(conn driver.Conn, db string) *Data { return &Data{conn: conn, db: db} }

// Conn is the underlying connection (dashboards share it).
func (d *Data) Conn() driver.Conn { return d.conn }

// Database is the database queried.
func (d *Data) Database() string { return d.db }

// Output is one served output that serving sampled for human review.
type Output struct {
	RequestID string
	Tenant    string
	TSMS      uint64
	Mode      string
	Tier      string
	Prompt    string
	ParentID  string
	Model     string
	Provider  string
	BlobKey   string
	RefKeys   []string // blob keys of the references the model got (edits)
	Arms      string   // "experiment:arm,..." or "-"
	TextHeavy bool
	Preserve  bool
	RefCount  int
	EditDepth int
	QAPass    bool
	// Shadow outputs are a shadow experiment's mirrors of LiveRequestID,
	// stored only to be paired with their live output.
	Shadow        bool
	LiveRequestID string
	// SampleRate is the probability the output was drawn for review with
	// (0 on rows from before migration 0055).
	SampleRate float64
}

// Stratum is how review queues balance items: route (model), tier, arm.
func (o Output) Stratum() string { return o.Model + "|" + o.Tier + "|" + o.Arms }

// SampledSince returns sampled outputs with a stored image whose ts_ms is at
// least sinceMS, newest last; duplicates of a redelivered event collapse by
// request id.
func (d *Data) SampledSince(ctx context.Context, sinceMS uint64, limit int) ([]Output, error) {
	q := fmt.Sprintf(`SELECT request_id, any(tenant), max(ts_ms), any(mode), any(tier), any(prompt), any(parent_id),
	any(model), any(provider), any(blob_key), any(arm_experiments), any(arm_names),
	max(text_heavy), max(preserve_subject), max(ref_count), max(edit_depth), max(qa_pass), any(ref_keys),
	max(shadow), any(live_request_id), max(sample_rate)
FROM %s.decisions
PREWHERE sampled = 1
WHERE blob_key != '' AND ts_ms >= ?
GROUP BY request_id
ORDER BY max(ts_ms)
LIMIT %d`, d.db, limit)
	rows, err := d.conn.Query(ctx, q, sinceMS)
	if err != nil {
		return nil, fmt.Errorf("query sampled outputs: %w", err)
	}
	defer rows.Close()
	var out []Output
	for rows.Next() {
		var o Output
		var exps, arms []string
		var th, ps, qa, shadow uint8
		var refs, depth uint16
		if err := rows.Scan(&o.RequestID, &o.Tenant, &o.TSMS, &o.Mode, &o.Tier, &o.Prompt, &o.ParentID,
			&o.Model, &o.Provider, &o.BlobKey, &exps, &arms, &th, &ps, &refs, &depth, &qa, &o.RefKeys,
			&shadow, &o.LiveRequestID, &o.SampleRate); err != nil {
			return nil, fmt.Errorf("scan sampled output: %w", err)
		}
		o.TextHeavy, o.Preserve, o.QAPass, o.Shadow = th == 1, ps == 1, qa == 1, shadow == 1
		o.RefCount, o.EditDepth = int(refs), int(depth)
		o.Arms = joinArms(exps, arms)
		out = append(out, o)
	}
	return out, rows.Err()
}

func joinArms(exps, arms []string) string {
	if len(exps) == 0 {
		return "-"
	}
	parts := make([]string, len(exps))
	for i := range exps {
		a := ""
		if i < len(arms) {
			a = arms[i]
		}
		parts[i] = exps[i] + ":" + a
	}
	return strings.Join(parts, ",")
}

// Judgement is one review row read back: who reviewed what.
type Judgement struct {
	Kind       string
	Reviewer   string
	RequestID  string
	OtherID    string
	Model      string
	OtherModel string
	Preference string
	Overlap    bool
	TSMS       uint64
	Names      []string
	Values     []float64
}

// Judgements returns every review event (FINAL collapses redeliveries).
func (d *Data) Judgements(ctx context.Context, since time.Time) ([]Judgement, error) {
	q := fmt.Sprintf(`SELECT kind, reviewer, request_id, other_request_id, model, other_model, preference, overlap, ts_ms,
	score_names, score_values
FROM %s.reviews FINAL
WHERE ts >= toDateTime(?)
ORDER BY ts_ms`, d.db)
	rows, err := d.conn.Query(ctx, q, since.Unix())
	if err != nil {
		return nil, fmt.Errorf("query reviews: %w", err)
	}
	defer rows.Close()
	var out []Judgement
	for rows.Next() {
		var j Judgement
		var ov uint8
		if err := rows.Scan(&j.Kind, &j.Reviewer, &j.RequestID, &j.OtherID, &j.Model, &j.OtherModel, &j.Preference, &ov, &j.TSMS,
			&j.Names, &j.Values); err != nil {
			return nil, fmt.Errorf("scan review: %w", err)
		}
		j.Overlap = ov == 1
		out = append(out, j)
	}
	return out, rows.Err()
}

// OCRCheck is the legibility check (OCR against the prompt's target text)
// of the last QA'd attempt of a request: the output that was served.
type OCRCheck struct {
	Pass  bool
	Score float64 // 1 - character error rate
	Read  string  // what OCR read
}

// OCRChecks returns the legibility checks of live requests since, by
// request id.
func (d *Data) OCRChecks(ctx context.Context, since time.Time) (map[string]OCRCheck, error) {
	q := fmt.Sprintf(`SELECT request_id, argMax(check_pass[indexOf(check_names, ?)], attempt), argMax(check_values[indexOf(check_names, ?)], attempt),
	argMax(ocr_text, attempt)
FROM %s.qa_results FINAL
WHERE ts >= toDateTime(?) AND shadow = 0 AND has(check_names, ?)
GROUP BY request_id`, d.db)
	rows, err := d.conn.Query(ctx, q, qa.CheckText, qa.CheckText, since.Unix(), qa.CheckText)
	if err != nil {
		return nil, fmt.Errorf("query legibility checks: %w", err)
	}
	defer rows.Close()
	out := map[string]OCRCheck{}
	for rows.Next() {
		var (
			id   string
			pass uint8
			c    OCRCheck
		)
		if err := rows.Scan(&id, &pass, &c.Score, &c.Read); err != nil {
			return nil, fmt.Errorf("scan legibility check: %w", err)
		}
		c.Pass = pass == 1
		out[id] = c
	}
	return out, rows.Err()
}

// AuditRecord is one control-plane change from the audit table.
type AuditRecord struct {
	EventID, Action, Subject, Actor, Body string
	TSMS                                  uint64
}

// Audit returns the newest audit records whose action starts with one of
// prefixes (e.g. "policy."), newest first.
func (d *Data) Audit(ctx context.Context, prefixes []string, limit int) ([]AuditRecord, error) {
	var conds []string
	var args []any
	for _, p := range prefixes {
		conds = append(conds, "startsWith(action, ?)")
		args = append(args, p)
	}
	q := fmt.Sprintf(`SELECT event_id, action, subject, actor, body, ts_ms FROM %s.audit FINAL
WHERE %s ORDER BY ts_ms DESC LIMIT %d`, d.db, strings.Join(conds, " OR "), limit)
	rows, err := d.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var a AuditRecord
		if err := rows.Scan(&a.EventID, &a.Action, &a.Subject, &a.Actor, &a.Body, &a.TSMS); err != nil {
			return nil, fmt.Errorf("scan audit: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
