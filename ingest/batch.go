package ingest

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/routelab/routelab/events"
	"github.com/segmentio/kafka-go"
)

// Table names in the routelab database, one per event type.
const (
	TableDecisions = "decisions"
	TableQA        = "qa_results"
	TableSignals   = "signals"
	TableReviews   = "reviews"
	TableAudit     = "audit"
)

// TopicTables maps each event topic ingest consumes to its table.
func TopicTables() map[string]string {
	return map[string]string{
		events.TopicDecisions: TableDecisions,
		events.TopicQA:        TableQA,
		events.TopicSignals:   TableSignals,
		events.TopicReviews:   TableReviews,
		events.TopicAudit:     TableAudit,
	}
}

// Topics lists the event topics ingest consumes by default.
func Topics() []string {
	return []string{events.TopicDecisions, events.TopicQA, events.TopicSignals, events.TopicReviews, events.TopicAudit}
}

// Batch gathers decoded events of every type for one insert round. It is not
// safe for concurrent use; each consumer worker owns one.
type Batch struct {
	decisions *table[events.Decision]
	qa        *table[events.QAResult]
	signals   *table[events.Signal]
	reviews   *table[events.Review]
	audit     *table[events.Audit]
	// tsMS holds every added event's ts, in order, for latency accounting.
	tsMS []int64
}

// NewBatch returns an empty batch.
func NewBatch() *Batch {
	return &Batch{
		decisions: newTable(TableDecisions, decisionColumns()),
		qa:        newTable(TableQA, qaColumns()),
		signals:   newTable(TableSignals, signalColumns()),
		reviews:   newTable(TableReviews, reviewColumns()),
		audit:     newTable(TableAudit, auditColumns()),
	}
}

// Len is the number of events in the batch.
func (b *Batch) Len() int { return len(b.tsMS) }

// TS returns the ts (Unix ms) of every event in the batch, in add order.
func (b *Batch) TS() []int64 { return b.tsMS }

// Reset empties the batch, keeping its buffers.
func (b *Batch) Reset() {
	b.decisions.reset()
	b.qa.reset()
	b.signals.reset()
	b.reviews.reset()
	b.audit.reset()
	b.tsMS = b.tsMS[:0]
}

// AddDecision adds a decoded decision.
func (b *Batch) AddDecision(d *events.Decision) { b.decisions.add(d); b.tsMS = append(b.tsMS, d.TS) }

// AddQA adds a decoded QA result.
func (b *Batch) AddQA(q *events.QAResult) { b.qa.add(q); b.tsMS = append(b.tsMS, q.TS) }

// AddSignal adds a decoded user signal.
func (b *Batch) AddSignal(s *events.Signal) { b.signals.add(s); b.tsMS = append(b.tsMS, s.TS) }

// AddReview adds a decoded review.
func (b *Batch) AddReview(r *events.Review) { b.reviews.add(r); b.tsMS = append(b.tsMS, r.TS) }

// AddAudit adds a decoded audit record.
func (b *Batch) AddAudit(a *events.Audit) { b.audit.add(a); b.tsMS = append(b.tsMS, a.TS) }

// Add decodes one message from topic (as events.Decode does) and adds it. A
// message that cannot be ingested returns the *events.DecodeError (an unknown
// topic is events.ReasonUnknownKind) and leaves the batch unchanged.
func (b *Batch) Add(topic string, value []byte) error {
	ev, err := decodeTopic(topic, value)
	if err != nil {
		return err
	}
	b.addEvent(ev)
	return nil
}

// decodeTopic decodes a message of one of the event topics.
func decodeTopic(topic string, value []byte) (any, error) {
	kind, ok := events.KindOfTopic(topic)
	if !ok {
		return nil, &events.DecodeError{Reason: events.ReasonUnknownKind, Detail: "no table for topic " + topic}
	}
	return decodeEvent(kind, value)
}

func decodeMessage(m kafka.Message) (any, error) { return decodeTopic(m.Topic, m.Value) }

// addEvent adds a decoded event (as returned by decodeEvent).
func (b *Batch) addEvent(ev any) {
	switch e := ev.(type) {
	case *events.Decision:
		b.AddDecision(e)
	case *events.QAResult:
		b.AddQA(e)
	case *events.Signal:
		b.AddSignal(e)
	case *events.Review:
		b.AddReview(e)
	case *events.Audit:
		b.AddAudit(e)
	}
}

// Writer inserts batches into the routelab tables of one database.
type Writer struct {
	conn driver.Conn
	db   string
}

// NewWriter returns a Writer for database db on conn.
func NewWriter(conn driver.Conn, db string) *Writer { return &Writer{conn: conn, db: db} }

// Write inserts every non-empty table of b, one clickhouse-go batch per
// table. On error some tables may have been written; writing the same batch
// again is safe because duplicates collapse by event_id.
func (w *Writer) Write(ctx context.Context, b *Batch) error {
	if err := b.decisions.send(ctx, w.conn, w.db); err != nil {
		return err
	}
	if err := b.qa.send(ctx, w.conn, w.db); err != nil {
		return err
	}
	if err := b.signals.send(ctx, w.conn, w.db); err != nil {
		return err
	}
	if err := b.reviews.send(ctx, w.conn, w.db); err != nil {
		return err
	}
	return b.audit.send(ctx, w.conn, w.db)
}

// Columns returns the columns ingest writes to table, in insert order (the
// table also has ingested_at, filled by ClickHouse); nil for an unknown table.
func Columns(table string) []string {
	b := NewBatch()
	switch table {
	case TableDecisions:
		return b.decisions.columnNames()
	case TableQA:
		return b.qa.columnNames()
	case TableSignals:
		return b.signals.columnNames()
	case TableReviews:
		return b.reviews.columnNames()
	case TableAudit:
		return b.audit.columnNames()
	}
	return nil
}
