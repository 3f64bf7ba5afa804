package chsource_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/go-faster/city"

	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/chsource"
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
