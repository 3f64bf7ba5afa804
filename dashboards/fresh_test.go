package dashboards_test

import (
	"context"
	"fmt"
	"image/color"
	"regexp"
	"testing"
	"time"

	"gonum.org/v1/plot/plotutil"

	"github.com/routelab/routelab/dashboards"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
)

// A new user's first minute: 1,500 requests, then the 24-hour dashboard.
// The hourly rollup holds them in one bucket, which makes no line; the
// time-series panels must zoom to the data and show several buckets.
func TestFreshTrafficShowsBuckets(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	now := time.Now().UTC()
	t0 := now.Add(-3 * time.Minute)
	models := []string{"flux-schnell", "gpt-image-1", "imagen-4"}
	b := ingest.NewBatch()
	for i := range 1500 {
		ts := t0.Add(time.Duration(i) * time.Minute / 1500)
		m := models[i%len(models)]
		d := events.Decision{
			Header: events.Header{EventID: fmt.Sprintf("ev-%d", i), SchemaVersion: events.SchemaVersion, TS: ts.UnixMilli(), Tenant: "acme", RequestID: fmt.Sprintf("req-%d", i)},
			Mode:   "generate", Tier: "standard", Model: m, Provider: "sim", Status: "ok", QAPass: i%10 != 0, Images: 1, Escalated: i%25 == 0,
			Attempts: []events.Attempt{{Model: m, Provider: "sim", Status: "ok"}},
		}
		b.AddDecision(&d)
	}
	if err := ingest.NewWriter(db.Conn, db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	f := dashboards.Filter{From: now.Add(-24 * time.Hour), To: now.Add(time.Minute)}
	for _, id := range []string{"route_share", "rates", "qa_fail", "provider_errors"} {
		p, _ := dashboards.PanelByID(id)
		fr, err := dashboards.Run(context.Background(), db.Conn, db.Database, p, f)
		if err != nil {
			t.Fatalf("panel %s: %v", id, err)
		}
		buckets := map[time.Time]float64{}
		for _, s := range fr.Series {
			for _, pt := range s.Points {
				buckets[pt.T] += pt.V
			}
		}
		// One minute at 10 s steps: 6 buckets, 7 when it straddles a step.
		if len(buckets) < 6 || fr.Step != 10*time.Second {
			t.Errorf("panel %s: %d buckets of %v over one minute of traffic, want >= 6 of 10s", id, len(buckets), fr.Step)
		}
		if id != "route_share" {
			continue
		}
		for ts, v := range buckets {
			if v < 0.999 || v > 1.001 {
				t.Errorf("route shares at %v sum to %v", ts, v)
			}
		}
	}
	// A long range of old traffic stays on the hourly rollup.
	p, _ := dashboards.PanelByID("route_share")
	long := dashboards.Filter{From: now.Add(-7 * 24 * time.Hour), To: now.Add(time.Minute)}
	if got := long.Step(true); got != 3*time.Hour {
		t.Fatalf("Step(7 days, rollup) = %v, want 3h", got)
	}
	if sql := p.SQLFor(db.Database, long); !regexp.MustCompile(`decisions_hourly`).MatchString(sql) {
		t.Errorf("7-day route share reads %s, want the hourly rollup", sql)
	}
}

// A time series of one bucket draws each series' value as a marker (a
// filled circle in the series' colour, beside the one in its legend key):
// a line through one point draws nothing.
func TestSingleBucketDrawsPoints(t *testing.T) {
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	p, _ := dashboards.PanelByID("route_share")
	fr := dashboards.Frame{Panel: p, Rows: 2, Step: time.Minute, Series: []dashboards.Series{
		{Name: "flux-schnell", Points: []dashboards.Point{{T: at, V: 0.4}}},
		{Name: "imagen-4", Points: []dashboards.Point{{T: at, V: 0.6}}},
	}}
	svg, err := dashboards.SVG(fr)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range fr.Series {
		fill := regexp.MustCompile(`<path d="[^"]*A[^"]*" style="fill:` + hex(plotutil.Color(i)) + `"`)
		if n := len(fill.FindAll(svg, -1)); n < 2 {
			t.Errorf("series %s: %d filled markers in its colour, want 2 (point and legend)", s.Name, n)
		}
	}
}

func hex(c color.Color) string {
	r, g, b, _ := c.RGBA()
	return fmt.Sprintf("#%02X%02X%02X", r>>8, g>>8, b>>8)
}
