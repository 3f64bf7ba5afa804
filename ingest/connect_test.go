package ingest_test

import (
	"context"
	"testing"

	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
)

// TestConnectCreatesNothing: a reader's connection reaches the database
// the DSN names without migrating it, and a ClickHouse that does not
// answer is an error at Connect, not at the first query.
func TestConnectCreatesNothing(t *testing.T) {
	db := ingesttest.Empty(t)
	ctx := context.Background()
	conn, name, err := ingest.Connect(ctx, db.DSN())
	if err != nil {
		t.Fatalf("Connect(%s): %v", db.DSN(), err)
	}
	defer conn.Close()
	if name != db.Database {
		t.Errorf("Connect database = %q, want %q", name, db.Database)
	}
	if got := db.Query(t, "SELECT count() FROM system.tables WHERE database = '"+db.Database+"'"); got != "0" {
		t.Errorf("tables after Connect = %s, want 0 (no migrations)", got)
	}
	if conn, _, err := ingest.Connect(ctx, "clickhouse://127.0.0.1:1/routelab?dial_timeout=1s"); err == nil {
		conn.Close()
		t.Error("Connect to a closed port succeeded")
	}
}
