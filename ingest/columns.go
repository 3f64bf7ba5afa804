package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// column gathers one ClickHouse column of a table from events of type T.
// Batches are sent column by column (clickhouse-go's columnar Append), which
// costs far less per row than appending rows of interface values.
type column[T any] interface {
	name() string
	add(e *T)
	values(lo, hi int) any // the gathered values of rows [lo, hi)
	reset()
}

type col[T, V any] struct {
	n string
	f func(*T) V
	v []V
}

func (c *col[T, V]) name() string          { return c.n }
func (c *col[T, V]) add(e *T)              { c.v = append(c.v, c.f(e)) }
func (c *col[T, V]) values(lo, hi int) any { return c.v[lo:hi] }
func (c *col[T, V]) reset()                { clear(c.v); c.v = c.v[:0] }

func mk[T, V any](name string, f func(*T) V) column[T] { return &col[T, V]{n: name, f: f} }

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func nonNil[V any](s []V) []V {
	if s == nil {
		return []V{}
	}
	return s
}

// secondsUTC is the DateTime value of a Unix-ms timestamp.
func secondsUTC(ms int64) time.Time { return time.Unix(ms/1000, 0).UTC() }

// table is the rows of one table waiting to be inserted.
type table[T any] struct {
	name string
	cols []column[T]
	rows int
	// seq holds each row's position in its batch's add order, so a row
	// ClickHouse refuses can be traced back to the message it came from.
	seq []int
	// pending is the row ranges of an unfinished write still to insert,
	// nil when no write is under way (see Writer.Write).
	pending []span
}

// span is the rows [lo, hi) of a table.
type span struct{ lo, hi int }

func newTable[T any](name string, cols []column[T]) *table[T] {
	return &table[T]{name: name, cols: cols}
}

func (t *table[T]) add(e *T, seq int) {
	for _, c := range t.cols {
		c.add(e)
	}
	t.seq = append(t.seq, seq)
	t.rows++
}

func (t *table[T]) reset() {
	for _, c := range t.cols {
		c.reset()
	}
	t.rows = 0
	t.seq = t.seq[:0]
	t.pending = nil
}

func (t *table[T]) columnNames() []string {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name()
	}
	return names
}

// insertSQL is the INSERT with its explicit column list (18.16 needs one).
func (t *table[T]) insertSQL(db string) string {
	return "INSERT INTO " + db + "." + t.name + " (" + strings.Join(t.columnNames(), ", ") + ")"
}

// write inserts the gathered rows as one clickhouse-go batch. When
// ClickHouse refuses it for what some rows hold (rowCaused), it halves the
// rows and inserts each half the same way, until every refused row stands
// alone: those are passed to reject (with their seq) and left out, the rest
// are inserted. Refusing n rows out of N costs about 2n*log2(N) inserts.
//
// Any other error (ClickHouse down, overloaded, misconfigured) returns at
// once with the ranges still to insert kept in t.pending: the next write
// resumes there rather than inserting again what went in, which the
// rollup views would count twice.
func (t *table[T]) write(ctx context.Context, conn driver.Conn, db string, reject func(seq int, err error)) error {
	if t.pending == nil {
		if t.rows == 0 {
			return nil
		}
		t.pending = append(t.pending, span{0, t.rows})
	}
	for len(t.pending) > 0 {
		s := t.pending[len(t.pending)-1]
		err := t.send(ctx, conn, db, s.lo, s.hi)
		switch {
		case err == nil:
			t.pending = t.pending[:len(t.pending)-1]
		case ctx.Err() != nil || !rowCaused(err):
			return err
		case s.hi-s.lo == 1:
			t.pending = t.pending[:len(t.pending)-1]
			reject(t.seq[s.lo], err)
		default:
			mid := s.lo + (s.hi-s.lo)/2
			// The last span is inserted next: the first half, so rows go in
			// in add order.
			t.pending = append(t.pending[:len(t.pending)-1], span{mid, s.hi}, span{s.lo, mid})
		}
	}
	t.pending = nil
	return nil
}

// send inserts rows [lo, hi) as one clickhouse-go batch.
func (t *table[T]) send(ctx context.Context, conn driver.Conn, db string, lo, hi int) error {
	b, err := conn.PrepareBatch(ctx, t.insertSQL(db))
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", t.name, err)
	}
	defer b.Abort()
	for i, c := range t.cols {
		if err := b.Column(i).Append(c.values(lo, hi)); err != nil {
			// clickhouse-go converts values on this side; one it cannot
			// convert fails the same way every time.
			return fmt.Errorf("append %s.%s: %w", t.name, c.name(), &convertError{err})
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", hi-lo, t.name, err)
	}
	return nil
}
