package chlocal_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/ingest/chlocal"
)

func query(t *testing.T, s *chlocal.Server, sql string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.HTTPURL+"/", strings.NewReader(sql))
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %q: %v", sql, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %q: %s: %s", sql, resp.Status, b)
	}
	return strings.TrimSpace(string(b))
}

func mustStart(t *testing.T, cfg chlocal.Config) *chlocal.Server {
	t.Helper()
	s, err := chlocal.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

func TestStartStopRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	s := mustStart(t, chlocal.Config{Dir: dir})
	t.Logf("first start took %v (native %s, http %s)", s.StartDuration, s.Addr, s.HTTPURL)
	if got := query(t, s, "SELECT 1"); got != "1" {
		t.Fatalf("SELECT 1 = %q, want 1", got)
	}
	query(t, s, "CREATE DATABASE IF NOT EXISTS keep")
	query(t, s, "CREATE TABLE keep.t (x UInt32) ENGINE = MergeTree() ORDER BY x")
	query(t, s, "INSERT INTO keep.t (x) VALUES (1), (2), (3)")

	// Stop returns when the server has exited; the limit only turns a hang
	// into a failure (a loaded machine has taken tens of seconds).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if _, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		t.Fatalf("native port %s still accepts connections after Stop", s.Addr)
	}

	s2 := mustStart(t, chlocal.Config{Dir: dir})
	t.Logf("restart took %v", s2.StartDuration)
	if got := query(t, s2, "SELECT sum(x) FROM keep.t"); got != "6" {
		t.Fatalf("after restart sum(x) = %q, want 6", got)
	}
}

func TestFixedPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := chlocal.Start(ctx, chlocal.Config{Dir: t.TempDir(), TCPPort: taken, StartTimeout: 20 * time.Second})
	if err == nil {
		_ = s.Stop(context.Background())
		t.Fatalf("Start on taken port %d succeeded, want an error", taken)
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := chlocal.Start(context.Background(), chlocal.Config{Dir: t.TempDir(), Binary: "/nonexistent/clickhouse-server"})
	if err == nil {
		t.Fatal("Start with a missing binary succeeded")
	}
}
