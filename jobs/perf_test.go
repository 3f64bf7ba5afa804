package jobs_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/jobstest"
)

// TestPerf measures recalibrate and drift over ROUTELAB_JOBS_PERF
// synthetic decisions (e.g. 10000000) generated inside ClickHouse. The
// baseline, measured in the same run, is a plain full scan of the
// decisions table (SELECT sum(propensity)), so the figures read as
// multiples of what the server needs just to read the data.
//
//	ROUTELAB_JOBS_PERF=10000000 go test ./jobs -run TestPerf -v -timeout 30m
func TestPerf(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ROUTELAB_JOBS_PERF"))
	if n <= 0 {
		t.Skip("set ROUTELAB_JOBS_PERF=N to generate N decisions and time the jobs")
	}
	live := jobstest.TrainedPolicy(t)
	db := ingesttest.ClickHouse(t)
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	t0 := time.Now()
	if err := jobstest.Generate(ctx, db, live.Version, n, start); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d decisions (+ QA results, signals, reviews) in %s", n, time.Since(t0).Round(time.Millisecond))
	w := jobs.Window{From: start, To: start.Add(time.Duration(n) * 10 * time.Millisecond)}
	s := &jobs.Store{Conn: db.Conn, DB: db.Database, Labels: jobs.DefaultLabels()}
	logf := func(f string, a ...any) { t.Logf(f, a...) }

	t0 = time.Now()
	var sum float64
	if err := db.Conn.QueryRow(ctx, "SELECT sum(propensity) FROM "+db.Database+".decisions").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	scan := time.Since(t0)

	t0 = time.Now()
	_, rep, err := jobs.RunRecalibrate(ctx, s, live, w, jobs.RecalibrateJob{}, logf)
	if err != nil {
		t.Fatal(err)
	}
	recal := time.Since(t0)

	t0 = time.Now()
	drep, err := jobs.Drift(ctx, s, live, w, jobs.DriftConfig{}, logf)
	if err != nil {
		t.Fatal(err)
	}
	dr := time.Since(t0)
	t.Logf("baseline full scan %s; recalibrate %s (%.1fx scan, %.0f rows, ece %.4f -> %.4f); drift %s (%.1fx scan, %d checks)",
		scan.Round(time.Millisecond), recal.Round(time.Millisecond), recal.Seconds()/scan.Seconds(), rep.Rows, rep.ECEBefore, rep.ECEAfter,
		dr.Round(time.Millisecond), dr.Seconds()/scan.Seconds(), len(drep.Features)+len(drep.Streams))
	if n >= 10000000 {
		if recal > time.Minute {
			t.Errorf("recalibrate over %d decisions took %s, want < 60 s", n, recal)
		}
		if dr > 10*time.Second {
			t.Errorf("drift over %d decisions took %s, want < 10 s", n, dr)
		}
	}
}
