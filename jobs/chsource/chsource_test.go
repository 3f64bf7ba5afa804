package chsource_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-faster/city"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/chsource"
	"github.com/routelab/routelab/jobs/jobstest"
)

func TestMain(m *testing.M) { os.Exit(ingesttest.Main(m)) }

func TestBinExpr(t *testing.T) {
	got := chsource.BinExpr("aspect", []float64{0.87, 1.15})
	want := "toUInt64((toFloat64(aspect) >= 0.87) + (toFloat64(aspect) >= 1.15))"
	if got != want {
		t.Errorf("BinExpr = %s, want %s", got, want)
	}
}

func TestLabelsSQL(t *testing.T) {
	sql := chsource.SQL(jobs.DefaultLabels(), "routelab", jobs.Window{}, []string{"model", "1 / propensity AS w"}, "")
	for _, want := range []string{"signal IN ('thumbs_down', 'regenerate')", "HAVING avg(v) < 3", "argMax(pass, attempt) = 0", "1 / propensity AS w"} {
		if !strings.Contains(sql, want) {
			t.Errorf("labels SQL lacks %q", want)
		}
	}
}

// TestHoldoutIsClickHouseSplit: jobs.Holdout (go-faster/city's CH64) is
// the held-out split ClickHouse computes with cityHash64, on ids of every
// length class CityHash treats apart (0-16, 17-32, 33-64, over 64 bytes).
func TestHoldoutIsClickHouseSplit(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	ids := []string{"", "r1", "s21-w000123", "a-request-id-of-24-bytes", strings.Repeat("x", 40), strings.Repeat("long-id-", 12)}
	var sel []string
	for _, id := range ids {
		sel = append(sel, "toString(cityHash64('"+id+"'))")
	}
	got := strings.Split(db.Query(t, "SELECT concat("+strings.Join(sel, ", ' ', ")+")"), " ")
	for i, id := range ids {
		want := strconv.FormatUint(city.CH64([]byte(id)), 10)
		if i >= len(got) || got[i] != want {
			t.Fatalf("cityHash64(%q) = %v, city.CH64 = %s", id, got, want)
		}
		if jobs.Holdout(id) != (city.CH64([]byte(id))%jobs.HoldoutMod == 0) {
			t.Errorf("Holdout(%q) disagrees with CH64", id)
		}
	}
}

// TestShadowMirrorsAreNotLiveTraffic: a shadow experiment's mirrors sit in
// the decisions table beside the live requests (shadow = 1); what the jobs
// read (counts, labelled rows, calibration, rates) is the live traffic
// alone, the same with the mirrors as without them.
func TestShadowMirrorsAreNotLiveTraffic(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	ctx := context.Background()
	p, err := datasets.Policy("explore")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ev, end := jobstest.Simulate(t, p, 3, 300, start, false)
	write := func(e *jobstest.Events) {
		if err := ingest.NewWriter(db.Conn, db.Database).Write(ctx, e.Batch()); err != nil {
			t.Fatal(err)
		}
	}
	s := &chsource.Store{Conn: db.Conn, DB: db.Database, Labels: jobs.DefaultLabels()}
	w := jobs.Window{From: start, To: end.Add(time.Minute)}
	read := func() string {
		n, err := s.Count(ctx, w, "")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.Rows(ctx, w, p.Version, 10000)
		if err != nil {
			t.Fatal(err)
		}
		bins, err := s.CalibrationBins(ctx, w, p.Version)
		if err != nil {
			t.Fatal(err)
		}
		rates, err := s.Rates(ctx, w, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("count %d, %d rows, bins %v, rates %v", n, len(rows), bins, rates)
	}
	write(&ev)
	live := read()

	// every decision mirrored, failing QA and with another model's cost
	var mirrors jobstest.Events
	for _, d := range ev.Decisions {
		d.EventID, d.RequestID, d.LiveRequestID, d.Shadow = d.EventID+"-m", d.RequestID+"-m", d.RequestID, true
		d.QAPass, d.CostUSD = false, 1
		mirrors.Decisions = append(mirrors.Decisions, d)
	}
	write(&mirrors)
	if got := read(); got != live {
		t.Errorf("with shadow mirrors:\n%s\nwant the live traffic's:\n%s", got, live)
	}
}
