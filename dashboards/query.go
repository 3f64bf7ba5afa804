package dashboards

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Series is one line or one group of bars.
type Series struct {
	Name   string
	Points []Point
}

// Point is one value at a time (time series) or a category (bars).
type Point struct {
	T     time.Time
	Label string
	V     float64
}

// Frame is a panel's result.
type Frame struct {
	Panel  Panel
	Series []Series
	Rows   int
	Took   time.Duration
	// Step is the time series' bucket width; From and To the range it
	// covers (narrower than the filter's when Run zoomed to the data).
	Step     time.Duration
	From, To time.Time
}

// minBuckets is the fewest time buckets a time series should show before
// Run looks for a finer step: one bucket makes no line.
const minBuckets = 3

// fineSpan is the longest range a rollup panel reads from the decisions
// table outright: a few hours of decisions scan quickly, and the hourly
// rollup would give at most this many points.
const fineSpan = 6 * time.Hour

// maxZooms bounds the extra queries of one panel: range step, then the
// hours holding data at minutes, then those minutes at seconds.
const maxZooms = 2

// Run executes the panel for the filter and shapes rows into series. A time
// series' bucket width follows the range (Filter.Step) and then the data:
// when its rows fall in fewer than minBuckets buckets and a finer step
// exists, it runs again over just the buckets holding data, at the step that
// narrower range allows. Fresh traffic of a few minutes in a 24-hour view so
// shows its minutes (from the decisions table, finer than the hourly
// rollups) instead of a single point.
func Run(ctx context.Context, conn driver.Conn, db string, p Panel, f Filter) (Frame, error) {
	if err := f.Validate(); err != nil {
		return Frame{}, err
	}
	start := time.Now()
	q := p
	if p.Fine != "" && f.To.Sub(f.From) <= fineSpan {
		q = p.fine() // the rollup would draw a few hourly points at most
	}
	fr, err := run(ctx, conn, db, q, f)
	for i := 0; err == nil && i < maxZooms; i++ {
		zp, zf, ok := zoom(q, f, fr)
		if !ok {
			break
		}
		var zfr Frame
		if zfr, err = run(ctx, conn, db, zp, zf); err == nil {
			q, f, fr = zp, zf, zfr
		}
	}
	if err != nil {
		return Frame{}, err
	}
	fr.Panel = p
	fr.Took = time.Since(start)
	return fr, nil
}

// zoom is the panel and filter showing fr's data at a finer step, when fr
// has too few buckets and a finer step exists.
func zoom(p Panel, f Filter, fr Frame) (Panel, Filter, bool) {
	if p.Kind != TimeSeries || fr.Rows == 0 {
		return p, f, false
	}
	seen := map[time.Time]bool{}
	var lo, hi time.Time
	for _, s := range fr.Series {
		for _, pt := range s.Points {
			seen[pt.T] = true
			if lo.IsZero() || pt.T.Before(lo) {
				lo = pt.T
			}
			if pt.T.After(hi) {
				hi = pt.T
			}
		}
	}
	if len(seen) >= minBuckets {
		return p, f, false
	}
	if p.Rollup {
		if p.Fine == "" {
			return p, f, false
		}
		p = p.fine()
	}
	z := f
	if lo.After(z.From) {
		z.From = lo
	}
	if end := hi.Add(fr.Step); end.Before(z.To) {
		z.To = end
	}
	if z.Step(false) >= fr.Step {
		return p, f, false
	}
	return p, z, true
}

// run is one query of the panel over the filter's range.
func run(ctx context.Context, conn driver.Conn, db string, p Panel, f Filter) (Frame, error) {
	rows, err := conn.Query(ctx, p.SQLFor(db, f))
	if err != nil {
		return Frame{}, fmt.Errorf("panel %s: %w", p.ID, err)
	}
	defer rows.Close()
	cts := rows.ColumnTypes()
	if len(cts) != 3 {
		return Frame{}, fmt.Errorf("panel %s: want 3 columns, got %d", p.ID, len(cts))
	}
	dest := make([]any, 3)
	for i, ct := range cts {
		dest[i] = reflect.New(ct.ScanType()).Interface()
	}
	bySeries := map[string]*Series{}
	var order []string
	fr := Frame{Panel: p, Step: f.Step(p.Rollup), From: f.From, To: f.To}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return Frame{}, fmt.Errorf("panel %s: scan: %w", p.ID, err)
		}
		var pt Point
		switch x := reflect.ValueOf(dest[0]).Elem().Interface().(type) {
		case time.Time:
			pt.T = x
		default:
			pt.Label = fmt.Sprint(x)
		}
		name := fmt.Sprint(reflect.ValueOf(dest[1]).Elem().Interface())
		pt.V = toFloat(reflect.ValueOf(dest[2]).Elem())
		s := bySeries[name]
		if s == nil {
			s = &Series{Name: name}
			bySeries[name] = s
			order = append(order, name)
		}
		s.Points = append(s.Points, pt)
		fr.Rows++
	}
	if err := rows.Err(); err != nil {
		return Frame{}, fmt.Errorf("panel %s: %w", p.ID, err)
	}
	sort.Strings(order)
	for _, n := range order {
		fr.Series = append(fr.Series, *bySeries[n])
	}
	if p.Normalize {
		normalize(fr.Series)
	}
	return fr, nil
}

func toFloat(v reflect.Value) float64 {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(v.Uint())
	case reflect.Pointer:
		if v.IsNil() {
			return math.NaN()
		}
		return toFloat(v.Elem())
	}
	return math.NaN()
}

// normalize turns values into shares of their x's total.
func normalize(ss []Series) {
	tot := map[string]float64{}
	key := func(p Point) string {
		if p.Label != "" {
			return p.Label
		}
		return p.T.String()
	}
	for _, s := range ss {
		for _, p := range s.Points {
			tot[key(p)] += p.V
		}
	}
	for i := range ss {
		for j := range ss[i].Points {
			if t := tot[key(ss[i].Points[j])]; t > 0 {
				ss[i].Points[j].V /= t
			}
		}
	}
}
