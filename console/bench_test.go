package console_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/console"
	"github.com/routelab/routelab/dashboards"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
)

// BenchmarkConsole measures the engineer's dashboards page and the
// reviewer's next item over ROUTELAB_BENCH_ROWS generated decisions
// (default 1,000,000; the target is 10,000,000, spread over 7 days,
// one in 200 sampled for review), through real HTTP against a real
// ClickHouse. The baseline is GET /healthz on the same console in the same
// run; each result is also reported as a ratio to it.
//
// ROUTELAB_BENCH_DB=NAME keeps the generated rows in database NAME on the
// ClickHouse named by ROUTELAB_TEST_CLICKHOUSE and reuses them in later runs
// (generating 10M rows once, then benchmarking many times):
//
//	routelab clickhouse --data-dir /tmp/chbench --ports auto --json &   # note its addresses
//	ROUTELAB_TEST_CLICKHOUSE=127.0.0.1:PORT,http://127.0.0.1:HTTPPORT ROUTELAB_BENCH_DB=bench10m \
//	  ROUTELAB_BENCH_ROWS=10000000 go test -run '^$' -bench BenchmarkConsole -benchtime 10x ./console/
func BenchmarkConsole(b *testing.B) {
	rows := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("ROUTELAB_BENCH_ROWS")); err == nil && v > 0 {
		rows = v
	}
	ctx := context.Background()
	blobs, err := blob.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	key, err := blobs.Put(context.Background(), []byte("\x89PNG\r\n\x1a\nbench"))
	if err != nil {
		b.Fatal(err)
	}
	conn, database := benchDatabase(b, rows, key)
	deps := console.Deps{Users: mustUsers(b), Data: console.NewData(conn, database), Blobs: blobs, Reviews: nopSink{}}
	// Cold: the panel cache is off, every view queries ClickHouse.
	c, base := mustConsole(b, deps, console.Config{Seed: 1, PanelCacheTTL: -1})
	_, cachedBase := mustConsole(b, deps, console.Config{Seed: 1})
	cached := newClient(b, cachedBase)
	cached.login("eng")
	t0 := time.Now()
	if err := c.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d sampled outputs into the review queues in %v", rows/200, time.Since(t0).Round(time.Millisecond))
	eng, rev := newClient(b, base), newClient(b, base)
	eng.login("eng")
	rev.login("rev")

	get := func(cl *client, path string) {
		resp, body := cl.get(path)
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s = %d %.300s", path, resp.StatusCode, body)
		}
	}
	var baseline float64
	b.Run("baseline_healthz", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			get(eng, "/healthz")
		}
		baseline = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	report := func(b *testing.B) {
		per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(per/1e6, "ms/op")
		if baseline > 0 {
			b.ReportMetric(per/baseline, "x_healthz")
		}
	}
	for _, r := range []string{"24h", "168h"} {
		b.Run("dashboards_"+r, func(b *testing.B) {
			t0 := time.Now()
			_, page := eng.get("/dashboards?range=" + r) // first view
			first := time.Since(t0)
			for _, m := range panelTimes.FindAllStringSubmatch(page, -1) {
				b.Logf("%s panel %s: %s rows in %s ms", r, m[1], m[2], m[3])
			}
			var slowest time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				get(eng, "/dashboards?range="+r)
				slowest = max(slowest, time.Since(t0))
			}
			report(b)
			b.ReportMetric(float64(first.Microseconds())/1e3, "first_ms")
			b.ReportMetric(float64(slowest.Microseconds())/1e3, "max_ms")
		})
	}
	b.Run("dashboards_168h_cached", func(b *testing.B) {
		get(cached, "/dashboards?range=168h")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			get(cached, "/dashboards?range=168h")
		}
		report(b)
	})
	b.Run("review_next", func(b *testing.B) {
		get(rev, "/review/next.json") // builds the reviewer's order
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			resp, body := rev.get("/review/next.json")
			b.StopTimer()
			var it struct{ ID string }
			if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &it) != nil || it.ID == "" {
				b.Fatalf("next.json = %d %.200s", resp.StatusCode, body)
			}
			rev.postJSON("/review/skip", `{"id":"`+it.ID+`"}`)
			b.StartTimer()
		}
		report(b)
	})
	b.Run("review_page", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			get(rev, "/review")
		}
		report(b)
	})
}

// benchDatabase returns a database holding rows generated decisions whose
// sampled rows point at blob key: a fresh one per run, or the one named by
// ROUTELAB_BENCH_DB, generated on first use and reused while it holds
// exactly rows decisions.
func benchDatabase(b *testing.B, rows int, key string) (driver.Conn, string) {
	ctx := context.Background()
	name := os.Getenv("ROUTELAB_BENCH_DB")
	if name == "" {
		db := ingesttest.ClickHouse(b)
		t0 := time.Now()
		if err := dashboards.Generate(ctx, db.Conn, db.Database, dashboards.GenConfig{Rows: rows, SampledEvery: 200, BlobKey: key}); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %d decision rows in %v", rows, time.Since(t0).Round(time.Millisecond))
		return db.Conn, db.Database
	}
	addr, _, _ := strings.Cut(os.Getenv(ingesttest.EnvAddr), ",")
	if addr == "" || !regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`).MatchString(name) {
		b.Fatalf("ROUTELAB_BENCH_DB=%q needs %s set and a lower-case name", name, ingesttest.EnvAddr)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: "default", Username: "default"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+name); err != nil {
		b.Fatal(err)
	}
	if _, err := ingest.Migrate(ctx, conn, name); err != nil {
		b.Fatalf("migrate %s: %v", name, err)
	}
	var have uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+name+".decisions").Scan(&have); err != nil {
		b.Fatal(err)
	}
	// The blob store is content-addressed: the same bytes get the same key
	// in every run's blob dir, so reused sampled rows still resolve.
	switch have {
	case uint64(rows):
		b.Logf("reusing %d decision rows in %s", rows, name)
		return conn, name
	case 0:
	default:
		b.Fatalf("%s holds %d decisions, not %d: DROP DATABASE %s first", name, have, rows, name)
	}
	t0 := time.Now()
	if err := dashboards.Generate(ctx, conn, name, dashboards.GenConfig{Rows: rows, SampledEvery: 200, BlobKey: key}); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d decision rows into %s in %v", rows, name, time.Since(t0).Round(time.Millisecond))
	return conn, name
}

var panelTimes = regexp.MustCompile(`id="panel-([a-z_]+)">\s*<img[^>]*><p class="muted">(\d+) rows · (\d+) ms`)

type nopSink struct{}

func (nopSink) Emit(context.Context, events.Review) error { return nil }
