package ingest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultDatabase is the database routelab's tables live in unless the DSN
// names another.
const DefaultDatabase = "routelab"

// DefaultDSN is where routelab looks for ClickHouse when nothing is configured.
const DefaultDSN = "clickhouse://127.0.0.1:9000/" + DefaultDatabase

var validDatabase = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseDSN parses a clickhouse-go DSN (clickhouse://user:pass@host:port/db?settings)
// and returns the options and the database, DefaultDatabase when the DSN
// names none. A bare host:port is accepted as clickhouse://host:port.
func ParseDSN(dsn string) (*clickhouse.Options, string, error) {
	if dsn == "" {
		dsn = DefaultDSN
	}
	if !strings.Contains(dsn, "://") {
		dsn = "clickhouse://" + dsn
	}
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("clickhouse dsn: %w", err)
	}
	db := opts.Auth.Database
	if db == "" || db == "default" && !strings.Contains(dsn, "/default") {
		db = DefaultDatabase
	}
	if !validDatabase.MatchString(db) {
		return nil, "", fmt.Errorf("clickhouse dsn: invalid database name %q", db)
	}
	opts.Auth.Database = db
	if opts.DialTimeout == 0 || opts.DialTimeout == 30*time.Second {
		opts.DialTimeout = 5 * time.Second
	}
	return opts, db, nil
}

// Connect connects to the ClickHouse the DSN names and pings it, creating
// and migrating nothing (for readers such as experiment analyses); it
// returns the connection and the database's name.
func Connect(ctx context.Context, dsn string) (driver.Conn, string, error) {
	opts, db, err := ParseDSN(dsn)
	if err != nil {
		return nil, "", err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, "", fmt.Errorf("open clickhouse: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, "", fmt.Errorf("clickhouse %v: %w", opts.Addr, err)
	}
	return conn, db, nil
}

// Open connects to the ClickHouse the DSN names, creates its database when
// missing, applies the migrations, and returns a connection whose default
// database is that database, plus its name.
func Open(ctx context.Context, dsn string) (driver.Conn, string, error) {
	opts, db, err := ParseDSN(dsn)
	if err != nil {
		return nil, "", err
	}
	if err := createDatabase(ctx, *opts, db); err != nil {
		return nil, "", err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, "", fmt.Errorf("open clickhouse: %w", err)
	}
	if _, err := Migrate(ctx, conn, db); err != nil {
		conn.Close()
		return nil, "", err
	}
	return conn, db, nil
}

// createDatabase connects without a default database (18.16 refuses a
// handshake naming a database that does not exist yet) and creates db.
func createDatabase(ctx context.Context, opts clickhouse.Options, db string) error {
	opts.Auth.Database = "default"
	conn, err := clickhouse.Open(&opts)
	if err != nil {
		return fmt.Errorf("open clickhouse: %w", err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}
