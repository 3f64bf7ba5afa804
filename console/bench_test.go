package console_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/console"
	"github.com/routelab/routelab/dashboards"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/ingest/ingesttest"
)

// BenchmarkConsole measures the engineer's dashboards page and the
// reviewer's next item over ROUTELAB_BENCH_ROWS generated decisions
// (default 1,000,000; the target is 10,000,000, spread over 7 days,
// one in 200 sampled for review), through real HTTP against a real
// ClickHouse. The baseline is GET /healthz on the same console in the same
// run; each result is also reported as a ratio to it.
func BenchmarkConsole(b *testing.B) {
	rows := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("ROUTELAB_BENCH_ROWS")); err == nil && v > 0 {
		rows = v
	}
	db := ingesttest.ClickHouse(b)
	blobs, err := blob.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	key, err := blobs.Put([]byte("\x89PNG\r\n\x1a\nbench"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Now()
	if err := dashboards.Generate(ctx, db.Conn, db.Database, dashboards.GenConfig{Rows: rows, SampledEvery: 200, BlobKey: key}); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d decision rows in %v", rows, time.Since(t0).Round(time.Millisecond))
	deps := console.Deps{Users: mustUsers(b), Data: console.NewData(db.Conn, db.Database), Blobs: blobs, Reviews: nopSink{}}
	// Cold: the panel cache is off, every view queries ClickHouse.
	c, base := mustConsole(b, deps, console.Config{Seed: 1, PanelCacheTTL: -1})
	_, cachedBase := mustConsole(b, deps, console.Config{Seed: 1})
	cached := newClient(b, cachedBase)
	cached.login("eng")
	t0 = time.Now()
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
			_, page := eng.get("/dashboards?range=" + r) // warm
			for _, m := range panelTimes.FindAllStringSubmatch(page, -1) {
				b.Logf("%s panel %s: %s rows in %s ms", r, m[1], m[2], m[3])
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				get(eng, "/dashboards?range="+r)
			}
			report(b)
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

var panelTimes = regexp.MustCompile(`id="panel-([a-z_]+)">\s*<img[^>]*><p class="muted">(\d+) rows · (\d+) ms`)

type nopSink struct{}

func (nopSink) Emit(context.Context, events.Review) error { return nil }
