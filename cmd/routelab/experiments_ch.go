package main

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/ingest"
)

// openExpReader connects to the ClickHouse dsn names (read only: no
// migrations) for experiment analyses; close the returned connection.
func openExpReader(ctx context.Context, dsn string, exact bool) (*chexp.Reader, driver.Conn, error) {
	opts, db, err := ingest.ParseDSN(dsn)
	if err != nil {
		return nil, nil, err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("open clickhouse: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("clickhouse %v: %w", opts.Addr, err)
	}
	r := chexp.NewReader(conn, db)
	r.Exact = exact
	return r, conn, nil
}
