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
	values() any
	reset()
}

type col[T, V any] struct {
	n string
	f func(*T) V
	v []V
}

func (c *col[T, V]) name() string { return c.n }
func (c *col[T, V]) add(e *T)     { c.v = append(c.v, c.f(e)) }
func (c *col[T, V]) values() any  { return c.v }
func (c *col[T, V]) reset()       { clear(c.v); c.v = c.v[:0] }

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
}

func newTable[T any](name string, cols []column[T]) *table[T] {
	return &table[T]{name: name, cols: cols}
}

func (t *table[T]) add(e *T) {
	for _, c := range t.cols {
		c.add(e)
	}
	t.rows++
}

func (t *table[T]) reset() {
	for _, c := range t.cols {
		c.reset()
	}
	t.rows = 0
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

// send inserts the gathered rows as one clickhouse-go batch.
func (t *table[T]) send(ctx context.Context, conn driver.Conn, db string) error {
	if t.rows == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, t.insertSQL(db))
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", t.name, err)
	}
	defer b.Abort()
	for i, c := range t.cols {
		if err := b.Column(i).Append(c.values()); err != nil {
			return fmt.Errorf("append %s.%s: %w", t.name, c.name(), err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", t.rows, t.name, err)
	}
	return nil
}
