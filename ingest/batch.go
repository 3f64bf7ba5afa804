package ingest

import (
	"context"
	"slices"

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
	// writing is set while a Write is unfinished (it failed and will be
	// resumed); rejected gathers the rows refused so far.
	writing  bool
	rejected []Rejection
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
	b.writing, b.rejected = false, b.rejected[:0]
}

// AddDecision adds a decoded decision.
func (b *Batch) AddDecision(d *events.Decision) {
	b.decisions.add(d, len(b.tsMS))
	b.tsMS = append(b.tsMS, d.TS)
}

// AddQA adds a decoded QA result.
func (b *Batch) AddQA(q *events.QAResult) { b.qa.add(q, len(b.tsMS)); b.tsMS = append(b.tsMS, q.TS) }

// AddSignal adds a decoded user signal.
func (b *Batch) AddSignal(s *events.Signal) {
	b.signals.add(s, len(b.tsMS))
	b.tsMS = append(b.tsMS, s.TS)
}

// AddReview adds a decoded review.
func (b *Batch) AddReview(r *events.Review) {
	b.reviews.add(r, len(b.tsMS))
	b.tsMS = append(b.tsMS, r.TS)
}

// AddAudit adds a decoded audit record.
func (b *Batch) AddAudit(a *events.Audit) { b.audit.add(a, len(b.tsMS)); b.tsMS = append(b.tsMS, a.TS) }

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
// table. When ClickHouse refuses rows for what they hold (a value it cannot
// parse or store), Write inserts all the others and returns a
// *RejectedError listing the refused ones (by add index); writing b again
// would be refused again. Any other error means ClickHouse could not take
// the batch now: call Write again with the same b, and it carries on from
// where it stopped, without inserting again what went in. Once a Write has
// returned nil or a *RejectedError, writing b again inserts it all again,
// which is safe because duplicates collapse by event_id.
func (w *Writer) Write(ctx context.Context, b *Batch) error {
	if !b.writing {
		b.writing, b.rejected = true, b.rejected[:0]
	}
	reject := func(table string) func(int, error) {
		return func(seq int, err error) {
			b.rejected = append(b.rejected, Rejection{Index: seq, Table: table, Err: err})
		}
	}
	if err := b.decisions.write(ctx, w.conn, w.db, reject(TableDecisions)); err != nil {
		return err
	}
	if err := b.qa.write(ctx, w.conn, w.db, reject(TableQA)); err != nil {
		return err
	}
	if err := b.signals.write(ctx, w.conn, w.db, reject(TableSignals)); err != nil {
		return err
	}
	if err := b.reviews.write(ctx, w.conn, w.db, reject(TableReviews)); err != nil {
		return err
	}
	if err := b.audit.write(ctx, w.conn, w.db, reject(TableAudit)); err != nil {
		return err
	}
	b.writing = false
	if len(b.rejected) > 0 {
		return &RejectedError{Rejected: slices.Clone(b.rejected)}
	}
	return nil
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
