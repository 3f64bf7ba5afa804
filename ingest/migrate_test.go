package ingest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
)

func TestMigrateTwice(t *testing.T) {
	db := ingesttest.Empty(t)
	ctx := context.Background()
	ms, err := ingest.Migrations()
	if err != nil || len(ms) == 0 {
		t.Fatalf("Migrations() = %v, %v; want at least one", ms, err)
	}
	first, err := ingest.Migrate(ctx, db.Conn, db.Database)
	if err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	if len(first) != len(ms) {
		t.Errorf("first Migrate applied %v, want all %d", first, len(ms))
	}
	second, err := ingest.Migrate(ctx, db.Conn, db.Database)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(second) != 0 {
		t.Errorf("second Migrate applied %v, want none", second)
	}
	if got := db.Query(t, "SELECT count() FROM schema_migrations FINAL"); got != "1" && len(ms) == 1 {
		t.Errorf("schema_migrations rows = %s, want 1", got)
	}
	// Re-running the statements themselves (a crash between a statement and
	// its record) must also succeed, or fail only in a way Migrate takes as
	// already done (ADD COLUMN of an existing column).
	for _, m := range ms {
		for _, s := range m.Statements(db.Database) {
			if err := db.Conn.Exec(ctx, s); err != nil && !ingest.AlreadyDone(err) {
				t.Errorf("re-run of %04d statement: %v", m.Version, err)
			}
		}
	}
}

// The Go column lists and the migrations must describe the same columns.
func TestColumnsMatchSchema(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	for _, table := range []string{ingest.TableDecisions, ingest.TableQA, ingest.TableSignals, ingest.TableReviews, ingest.TableAudit} {
		got := strings.Split(db.Query(t, "SELECT name FROM system.columns WHERE database = '"+db.Database+"' AND table = '"+table+"'"), "\n")
		want := append(ingest.Columns(table), "ingested_at")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("columns of %s (-go +clickhouse):\n%s", table, diff)
		}
	}
}

func TestParseDSN(t *testing.T) {
	tests := []struct {
		give     string
		wantAddr string
		wantDB   string
	}{
		{"", "127.0.0.1:9000", "routelab"},
		{"clickhouse://10.0.0.1:9000/analytics", "10.0.0.1:9000", "analytics"},
		{"127.0.0.1:19000", "127.0.0.1:19000", "routelab"},
		{"clickhouse://u:p@ch:9440/routelab?dial_timeout=2s", "ch:9440", "routelab"},
	}
	for _, tt := range tests {
		opts, db, err := ingest.ParseDSN(tt.give)
		if err != nil {
			t.Errorf("ParseDSN(%q): %v", tt.give, err)
			continue
		}
		if opts.Addr[0] != tt.wantAddr || db != tt.wantDB {
			t.Errorf("ParseDSN(%q) = %v, %q; want %s, %q", tt.give, opts.Addr, db, tt.wantAddr, tt.wantDB)
		}
	}
	if _, _, err := ingest.ParseDSN("clickhouse://h:9000/bad-name;drop"); err == nil {
		t.Error("ParseDSN accepted an unsafe database name")
	}
}
