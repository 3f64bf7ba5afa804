package dashboards_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/console/consoletest"
	"github.com/routelab/routelab/dashboards"
	"github.com/routelab/routelab/ingest/ingesttest"
)

func TestMain(m *testing.M) { os.Exit(ingesttest.Main(m)) }

type memBlobs struct{}

func (memBlobs) Put(_ context.Context, b []byte) (string, error) { return "k", nil }

func TestPanelsRunOnClickHouse(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	now := time.Now()
	if _, err := consoletest.Seed(context.Background(), db.Conn, db.Database, memBlobs{}, consoletest.Config{
		Prompts: 4, Traffic: 600, Seed: 3, Now: now, Reviewers: []string{"ann"},
	}); err != nil {
		t.Fatal(err)
	}
	f := dashboards.Filter{From: now.Add(-25 * time.Hour), To: now.Add(time.Minute)}
	for _, p := range dashboards.Panels {
		fr, err := dashboards.Run(context.Background(), db.Conn, db.Database, p, f)
		if err != nil {
			t.Errorf("panel %s: %v", p.ID, err)
			continue
		}
		if fr.Rows == 0 {
			t.Errorf("panel %s: no rows on seeded data", p.ID)
		}
		svg, err := dashboards.SVG(fr)
		if err != nil || !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("panel %s: SVG = %d bytes, %v", p.ID, len(svg), err)
		}
	}
	// Route shares at each time add up to 1.
	p, _ := dashboards.PanelByID("route_share")
	fr, _ := dashboards.Run(context.Background(), db.Conn, db.Database, p, f)
	sum := map[time.Time]float64{}
	for _, s := range fr.Series {
		for _, pt := range s.Points {
			sum[pt.T] += pt.V
		}
	}
	for ts, v := range sum {
		if v < 0.999 || v > 1.001 {
			t.Errorf("route shares at %v sum to %v", ts, v)
		}
	}
	// Filters narrow the rows: one tenant, one experiment.
	f.Tenant, f.Experiment = "acme", "exp-typo"
	some, err := dashboards.Run(context.Background(), db.Conn, db.Database, mustCount(t), f)
	if err != nil {
		t.Fatal(err)
	}
	if n := total(some); n == 0 || n >= 600 {
		t.Errorf("requests for tenant acme in exp-typo = %v, want some but not all of 600", n)
	}
}

// mustCount is a test panel counting decisions, to check the filters.
func mustCount(t *testing.T) dashboards.Panel {
	t.Helper()
	return dashboards.Panel{ID: "count", Kind: dashboards.Bars, Rollup: true, SQL: "SELECT 'all' AS x, 'n' AS s, countMerge(requests) AS v FROM $DB.decisions_hourly WHERE $WHERE"}
}

func total(fr dashboards.Frame) float64 {
	n := 0.0
	for _, s := range fr.Series {
		for _, p := range s.Points {
			n += p.V
		}
	}
	return n
}

func TestFilterValidate(t *testing.T) {
	now := time.Now()
	tests := []struct {
		give dashboards.Filter
		want string // field, "" ok
	}{
		{dashboards.Filter{From: now.Add(-time.Hour), To: now}, ""},
		{dashboards.Filter{From: now.Add(-time.Hour), To: now, Tenant: "x' OR 1=1 --"}, "tenant"},
		{dashboards.Filter{From: now.Add(-time.Hour), To: now, Experiment: "a b"}, "experiment"},
		{dashboards.Filter{From: now, To: now.Add(-time.Hour)}, "to"},
	}
	for _, tt := range tests {
		err := tt.give.Validate()
		var fe *dashboards.FilterError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Validate(%+v) = %v", tt.give, err)
		case tt.want != "" && (err == nil || !asFilterErr(err, &fe) || fe.Field != tt.want):
			t.Errorf("Validate(%+v) = %v, want field %s", tt.give, err, tt.want)
		}
	}
}

func asFilterErr(err error, fe **dashboards.FilterError) bool {
	e, ok := err.(*dashboards.FilterError)
	*fe = e
	return ok
}

func TestGrafanaExport(t *testing.T) {
	b, err := dashboards.Grafana("routelab")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct {
				RawSQL string `json:"rawSql"`
			} `json:"targets"`
		}
		Inputs []struct {
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) != len(dashboards.Panels) {
		t.Fatalf("Grafana has %d panels, want %d", len(d.Panels), len(dashboards.Panels))
	}
	for _, p := range d.Panels {
		sql := p.Targets[0].RawSQL
		if strings.Contains(sql, "$WHERE") || strings.Contains(sql, "$BUCKET") || strings.Contains(sql, "$DB") || !strings.Contains(sql, "$__timeFilter(") {
			t.Errorf("panel %q SQL not translated to Grafana macros: %s", p.Title, sql)
		}
	}
	if len(d.Inputs) != 1 || d.Inputs[0].PluginID != dashboards.GrafanaDataSource {
		t.Errorf("inputs = %+v, want the ClickHouse data source", d.Inputs)
	}
}

func TestGenerate(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	end := time.Now()
	if err := dashboards.Generate(context.Background(), db.Conn, db.Database, dashboards.GenConfig{
		Rows: 50_000, Span: 24 * time.Hour, End: end, SampledEvery: 100, BlobKey: strings.Repeat("a", 64), Chunk: 20_000,
	}); err != nil {
		t.Fatal(err)
	}
	if got := db.Query(t, "SELECT count(), sum(sampled), uniqExact(model), uniqExact(tenant) FROM decisions"); got != "50000\t500\t5\t20" {
		t.Errorf("generated count, sampled, models, tenants = %q, want 50000 500 5 20", got)
	}
	f := dashboards.Filter{From: end.Add(-25 * time.Hour), To: end.Add(time.Minute)}
	// Generated latencies are uniform on [400, 9400) ms: p50 4900, p95 8950;
	// quantileTiming reads them in 16 ms steps (and a few tenants' worth of
	// rows per model and hour): within 2%.
	lp, _ := dashboards.PanelByID("latency")
	lat, err := dashboards.Run(context.Background(), db.Conn, db.Database, lp, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat.Series) != 2 || len(lat.Series[0].Points) != 5 {
		t.Fatalf("latency panel = %+v, want p50 and p95 of 5 models", lat.Series)
	}
	for _, s := range lat.Series {
		want := map[string]float64{"p50": 4900, "p95": 8950}[s.Name]
		for _, pt := range s.Points {
			if pt.V < want*0.98 || pt.V > want*1.02 {
				t.Errorf("latency %s of %s = %.0f ms, want %.0f within 2%%", s.Name, pt.Label, pt.V, want)
			}
		}
	}
	for _, p := range dashboards.Panels {
		fr, err := dashboards.Run(context.Background(), db.Conn, db.Database, p, f)
		if err != nil {
			t.Errorf("panel %s on generated rows: %v", p.ID, err)
		} else if fr.Rows == 0 && p.ID != "satisfaction" && p.ID != "review_scores" {
			t.Errorf("panel %s: no rows on generated data", p.ID)
		}
	}
}
