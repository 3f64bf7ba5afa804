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
}

// Run executes the panel for the filter and shapes rows into series.
func Run(ctx context.Context, conn driver.Conn, db string, p Panel, f Filter) (Frame, error) {
	if err := f.Validate(); err != nil {
		return Frame{}, err
	}
	start := time.Now()
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
	fr := Frame{Panel: p}
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
	fr.Took = time.Since(start)
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
