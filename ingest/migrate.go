package ingest

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned schema step: migrations/NNNN_name.sql, statements
// separated by semicolons, ${db} standing for the database.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".sql")
		num, rest, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: rest, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Statements splits a migration into statements with ${db} replaced.
func (m Migration) Statements(db string) []string {
	var lines []string
	for _, l := range strings.Split(m.SQL, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "--") {
			continue
		}
		lines = append(lines, l)
	}
	var out []string
	for _, s := range strings.Split(strings.Join(lines, "\n"), ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, strings.ReplaceAll(s, "${db}", db))
		}
	}
	return out
}

// Migrate applies the migrations db has not recorded in its
// schema_migrations table and returns the versions it applied. Each
// statement is idempotent (IF NOT EXISTS), so two processes migrating at
// once, or a crash between a statement and its record, are harmless.
func Migrate(ctx context.Context, conn driver.Conn, db string) ([]int, error) {
	if !validDatabase.MatchString(db) {
		return nil, fmt.Errorf("invalid database name %q", db)
	}
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	if err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+db+`.schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree() ORDER BY version`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	done := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+db+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		done[int(v)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	var applied []int
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		for _, stmt := range m.Statements(db) {
			if err := conn.Exec(ctx, stmt); err != nil && !alreadyDone(err) {
				return applied, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		if err := record(ctx, conn, db, m); err != nil {
			return applied, fmt.Errorf("record migration %04d: %w", m.Version, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// record notes m as applied. It goes through a batch: an INSERT ... VALUES
// sent with Exec hangs on 18.16's native protocol.
func record(ctx context.Context, conn driver.Conn, db string, m Migration) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name)")
	if err != nil {
		return err
	}
	if err := b.Append(uint32(m.Version), m.Name); err != nil {
		b.Abort()
		return err
	}
	return b.Send()
}

// alreadyDone reports errors that mean a statement's effect is already
// there: 18.16 has no ADD COLUMN IF NOT EXISTS, so a migration that adds a
// column and crashed before its record must be able to run again.
func alreadyDone(err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	switch ex.Code {
	case 15, 57: // DUPLICATE_COLUMN, TABLE_ALREADY_EXISTS
		return true
	case 44: // ILLEGAL_COLUMN: 18.16's answer to ADD COLUMN of an existing one
		return strings.Contains(ex.Message, "already exists")
	}
	return false
}
