package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
)

// expAnalyzer reads experiment aggregates from ClickHouse and analyses them.
type expAnalyzer struct {
	conn   driver.Conn
	reader *chexp.Reader
}

func openExpAnalyzer(ctx context.Context, dsn string, exact bool) (*expAnalyzer, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("clickhouse dsn: %w", err)
	}
	db := opts.Auth.Database
	if db == "" {
		db = "routelab"
		opts.Auth.Database = db
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %v: %w", opts.Addr, err)
	}
	r := chexp.NewReader(conn, db)
	r.Exact = exact
	return &expAnalyzer{conn: conn, reader: r}, nil
}

// Report analyses s's current phase. Each call is a look: its always-valid
// results are recorded in ClickHouse, and the ones reported are running
// over every look at the phase so far (experiments.Report.ApplyLooks).
func (a *expAnalyzer) Report(ctx context.Context, s experiments.Spec, alpha float64) (experiments.Report, error) {
	data, err := a.reader.Arms(ctx, s)
	if err != nil {
		return experiments.Report{}, err
	}
	r := experiments.Analyze(s, data, alpha)
	if err := a.reader.Look(ctx, s, alpha, &r, true, time.Now()); err != nil {
		return experiments.Report{}, err
	}
	return r, nil
}

func (a *expAnalyzer) Close() error { return a.conn.Close() }
