package jobs_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/chsource"
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
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var db *ingesttest.DB
	if addr := os.Getenv("ROUTELAB_JOBS_PERF_ADDR"); addr != "" {
		// a kept database on a running server: generated once, measured often
		conn, name, err := ingest.Open(ctx, "clickhouse://"+addr+"/jobsperf")
		if err != nil {
			t.Fatal(err)
		}
		db = &ingesttest.DB{Addr: addr, Database: name, Conn: conn}
	} else {
		db = ingesttest.ClickHouse(t)
	}
	var have uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM "+db.Database+".decisions").Scan(&have); err != nil {
		t.Fatal(err)
	}
	if have < uint64(n) {
		t0 := time.Now()
		if err := jobstest.Generate(ctx, db, live.Version, n, start); err != nil {
			t.Fatal(err)
		}
		t.Logf("generated %d decisions (+ QA results, signals, reviews) in %s", n, time.Since(t0).Round(time.Millisecond))
	}
	w := jobs.Window{From: start, To: start.Add(time.Duration(n) * 10 * time.Millisecond)}
	s := &chsource.Store{Conn: db.Conn, DB: db.Database, Labels: jobs.DefaultLabels()}
	logf := func(f string, a ...any) { t.Logf(f, a...) }

	// CPU accounting: the server's own counters (user+system time, and
	// time its threads waited for a CPU) and this process's rusage, so the
	// figures say how much work a job is, whatever else the machine runs
	type usage struct{ server, wait, client time.Duration }
	cpu := func() usage {
		var u usage
		rows, err := db.Conn.Query(ctx, "SELECT event, value FROM system.events WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds', 'OSCPUWaitMicroseconds')")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var e string
			var v uint64
			if err := rows.Scan(&e, &v); err != nil {
				t.Fatal(err)
			}
			if e == "OSCPUWaitMicroseconds" {
				u.wait += time.Duration(v) * time.Microsecond
			} else {
				u.server += time.Duration(v) * time.Microsecond
			}
		}
		rows.Close()
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		u.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		return u
	}
	diff := func(a, b usage) string {
		return fmt.Sprintf("server CPU %s, client CPU %s, server waited for a CPU %s",
			(b.server - a.server).Round(time.Millisecond), (b.client - a.client).Round(time.Millisecond), (b.wait - a.wait).Round(time.Millisecond))
	}
	var load [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscanf(string(b), "%f %f %f", &load[0], &load[1], &load[2])
	}
	t.Logf("load average %v on %d CPUs", load, runtime.NumCPU())

	t0 := time.Now()
	var sum float64
	if err := db.Conn.QueryRow(ctx, "SELECT sum(propensity) FROM "+db.Database+".decisions").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	scan := time.Since(t0)

	t0 = time.Now()
	u0 := cpu()
	_, rep, err := jobs.RunRecalibrate(ctx, s, live, w, jobs.RecalibrateJob{}, logf)
	if err != nil {
		t.Fatal(err)
	}
	recal := time.Since(t0)
	u1 := cpu()
	t.Logf("recalibrate: wall %s; %s", recal.Round(time.Millisecond), diff(u0, u1))

	t0 = time.Now()
	drep, err := jobs.Drift(ctx, s, live, w, jobs.DriftConfig{}, logf)
	if err != nil {
		t.Fatal(err)
	}
	dr := time.Since(t0)
	u2 := cpu()
	t.Logf("drift: wall %s; %s", dr.Round(time.Millisecond), diff(u1, u2))
	t.Logf("baseline full scan %s; recalibrate %s (%.1fx scan, %.0f rows, ece %.4f -> %.4f); drift %s (%.1fx scan, %d checks)",
		scan.Round(time.Millisecond), recal.Round(time.Millisecond), recal.Seconds()/scan.Seconds(), rep.Rows, rep.ECEBefore, rep.ECEAfter,
		dr.Round(time.Millisecond), dr.Seconds()/scan.Seconds(), len(drep.Features)+len(drep.Streams))
	if n >= 10000000 {
		// the work itself must fit the budget on 2 cores whatever the
		// machine's load: CPU seconds (server + client) under the limit
		// times the cores; wall time is asserted only on a machine that
		// is not oversubscribed, where it means something
		rc := (u1.server - u0.server) + (u1.client - u0.client)
		dc := (u2.server - u1.server) + (u2.client - u1.client)
		if rc > 2*time.Minute {
			t.Errorf("recalibrate over %d decisions used %s of CPU, more than 60 s on 2 cores", n, rc)
		}
		if dc > 20*time.Second {
			t.Errorf("drift over %d decisions used %s of CPU, more than 10 s on 2 cores", n, dc)
		}
		if load[0] > float64(runtime.NumCPU()) {
			t.Logf("load average %.1f on %d CPUs: wall-time limits not asserted", load[0], runtime.NumCPU())
			return
		}
		if recal > time.Minute {
			t.Errorf("recalibrate over %d decisions took %s, want < 60 s", n, recal)
		}
		if dr > 10*time.Second {
			t.Errorf("drift over %d decisions took %s, want < 10 s", n, dr)
		}
	}
}
