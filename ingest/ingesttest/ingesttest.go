// Package ingesttest gives tests a real ClickHouse: one clickhouse-server per
// test binary (or the one named by ROUTELAB_TEST_CLICKHOUSE), and a fresh
// database per test, migrated to the routelab schema and dropped in
// t.Cleanup.
//
// Use it from any package's tests:
//
//	func TestMain(m *testing.M) { os.Exit(ingesttest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		ch := ingesttest.ClickHouse(t) // ch.Conn, ch.Database, ch.Addr, ch.HTTPURL, ch.DSN()
//		...
//	}
package ingesttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/chlocal"
)

// EnvAddr names a running ClickHouse for the tests: "host:port" of the
// native protocol, optionally ",http://host:port" for its HTTP interface
// (default: port 8123 on the same host). `make test` sets it so the whole
// suite shares one server.
const EnvAddr = "ROUTELAB_TEST_CLICKHOUSE"

// Main runs the tests of a package with one clickhouse-server started for
// the whole binary unless EnvAddr names one; it returns the exit code.
// Without Main, ClickHouse starts a server per test.
func Main(m *testing.M) int {
	if os.Getenv(EnvAddr) != "" || fuzzing() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "routelab-ch-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingesttest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := chlocal.Start(ctx, chlocal.Config{Dir: dir})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingesttest: start clickhouse-server:", err)
		return 1
	}
	os.Setenv(EnvAddr, s.Addr+","+s.HTTPURL)
	code := m.Run()
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ingesttest: stop clickhouse-server:", err)
	}
	return code
}

// fuzzing reports whether the binary runs a fuzz target (go test -fuzz, or
// one of its workers): fuzz targets decode bytes and need no ClickHouse.
func fuzzing() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// DB is a test's own database on a real ClickHouse.
type DB struct {
	// Addr is the native-protocol host:port; HTTPURL the HTTP interface.
	Addr    string
	HTTPURL string
	// Database is this test's database (dropped when the test ends).
	Database string
	// Conn has Database as its default database.
	Conn driver.Conn
}

// DSN is the clickhouse-go DSN of the test's database.
func (db *DB) DSN() string { return "clickhouse://" + db.Addr + "/" + db.Database }

// Count returns SELECT count() FROM table FINAL in the test's database.
func (db *DB) Count(t testing.TB, table string) uint64 {
	t.Helper()
	var n uint64
	if err := db.Conn.QueryRow(context.Background(), "SELECT count() FROM "+db.Database+"."+table+" FINAL").Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// Query runs sql over the HTTP interface and returns the trimmed body
// (TabSeparated), failing the test on an error.
func (db *DB) Query(t testing.TB, sql string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, db.HTTPURL+"/?database="+db.Database, strings.NewReader(sql))
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true // clickhouse-server waits for idle keep-alive connections on shutdown
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("query %q: %s: %s", sql, resp.Status, b)
	}
	return strings.TrimSpace(string(b))
}

// ClickHouse returns a fresh database migrated to the routelab schema.
func ClickHouse(t testing.TB) *DB {
	t.Helper()
	db := Empty(t)
	if _, err := ingest.Migrate(context.Background(), db.Conn, db.Database); err != nil {
		t.Fatalf("migrate %s: %v", db.Database, err)
	}
	return db
}

// Empty returns a fresh, empty database (for migration tests).
func Empty(t testing.TB) *DB {
	t.Helper()
	addr, httpURL := server(t)
	name := dbName(t)
	ctx := context.Background()
	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: "default", Username: "default"}})
	if err != nil {
		t.Fatalf("open clickhouse %s: %v", addr, err)
	}
	defer admin.Close()
	if err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: name, Username: "default"}})
	if err != nil {
		t.Fatalf("open clickhouse %s: %v", addr, err)
	}
	t.Cleanup(func() {
		conn.Close()
		admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: "default", Username: "default"}})
		if err != nil {
			t.Errorf("open clickhouse to drop %s: %v", name, err)
			return
		}
		defer admin.Close()
		if err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return &DB{Addr: addr, HTTPURL: httpURL, Database: name, Conn: conn}
}

// server returns the shared server's addresses, or starts one for this test.
func server(t testing.TB) (addr, httpURL string) {
	t.Helper()
	if v := os.Getenv(EnvAddr); v != "" {
		addr, httpURL, _ = strings.Cut(v, ",")
		if httpURL == "" {
			host, _, _ := net.SplitHostPort(addr)
			httpURL = "http://" + net.JoinHostPort(host, "8123")
		}
		return addr, httpURL
	}
	s := Server(t)
	return s.Addr, s.HTTPURL
}

// Server starts a clickhouse-server of the test's own under t.TempDir and
// stops it in t.Cleanup: for tests that stop and restart ClickHouse.
func Server(t testing.TB) *chlocal.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := chlocal.Start(ctx, chlocal.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start clickhouse-server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop clickhouse-server: %v", err)
		}
	})
	return s
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

func dbName(t testing.TB) string {
	n := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(n) > 40 {
		n = n[:40]
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	return "test_" + n + "_" + hex.EncodeToString(r[:])
}
