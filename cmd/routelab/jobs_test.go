package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs/jobstest"
	"github.com/routelab/routelab/lab/labtest"
)

// lastJSON decodes the last line of stdout, which every --json flag
// promises is one JSON object.
func lastJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("last stdout line is not a JSON object: %v\n%s", err, out)
	}
	return m
}

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// TestLabJobsCLI runs recalibrate, ope and drift the way a user does, against
// a real ClickHouse holding simulated traffic, and checks the report keys
// the issue names.
func TestLabJobsCLI(t *testing.T) {
	t.Parallel()
	labtest.Heavy(t) // trains a policy and simulates 20k requests: minutes under -race
	live := jobstest.TrainedPolicy(t)
	db := ingesttest.ClickHouse(t)
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	end := jobstest.Serve(t, db, live, 11, 20000, start, false)
	dir := t.TempDir()
	pol := filepath.Join(dir, "live.json")
	b, err := live.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pol, b, 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--clickhouse-dsn", db.DSN(), "--policy", pol, "--data-dir", dir,
		"--from", strconv.FormatInt(start.UnixMilli(), 10), "--to", strconv.FormatInt(end.UnixMilli(), 10), "--json"}

	out, errOut, err := runCLI(t, append([]string{"jobs", "recalibrate"}, common...)...)
	if err != nil {
		t.Fatalf("jobs recalibrate: %v\n%s", err, errOut)
	}
	rec := lastJSON(t, out)
	for _, k := range []string{"ece_before", "ece_after", "policy_version", "parent_version", "brier_before", "brier_after"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("recalibrate report lacks %s: %v", k, rec)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "policies", "candidate.json")); err != nil {
		t.Errorf("no candidate policy written: %v", err)
	}

	out, errOut, err = runCLI(t, append([]string{"jobs", "ope"}, common...)...)
	if err != nil {
		t.Fatalf("jobs ope: %v\n%s", err, errOut)
	}
	o := lastJSON(t, out)
	for _, k := range []string{"ips", "snips", "dr"} {
		e, ok := o[k].(map[string]any)
		if !ok {
			t.Fatalf("ope report lacks %s: %v", k, o)
		}
		lo, hi, v := e["ci_low"].(float64), e["ci_high"].(float64), e["value"].(float64)
		if !(lo <= v && v <= hi && hi-lo > 0 && hi-lo < 0.5) {
			t.Errorf("ope %s = %v in [%v, %v]: want a point inside a real interval", k, v, lo, hi)
		}
	}
	if ess, _ := o["ess"].(float64); ess <= 0 {
		t.Errorf("ope ess = %v, want > 0", o["ess"])
	}

	out, errOut, err = runCLI(t, append([]string{"jobs", "drift"}, common...)...)
	if err != nil {
		t.Fatalf("jobs drift: %v\n%s", err, errOut)
	}
	d := lastJSON(t, out)
	feats, ok := d["features"].(map[string]any)
	if !ok || len(feats) == 0 {
		t.Fatalf("drift report has no features: %v", d)
	}
	for name, v := range feats {
		f := v.(map[string]any)
		for _, k := range []string{"psi", "ks", "breached"} {
			if _, ok := f[k]; !ok {
				t.Errorf("drift feature %s lacks %s: %v", name, k, f)
			}
		}
	}
	if _, ok := d["breached"].(bool); !ok {
		t.Errorf("drift report lacks breached: %v", d)
	}
	reports, _ := filepath.Glob(filepath.Join(dir, "reports", "*.json"))
	if len(reports) != 3 {
		t.Errorf("reports written: %v, want 3", reports)
	}
	if n := db.Query(t, "SELECT count() FROM audit WHERE startsWith(action, 'jobs.')"); n != "3" {
		t.Errorf("audit rows for the jobs = %s, want 3", n)
	}

	// a bad window is refused with a clear error, not a panic
	if _, _, err := runCLI(t, "jobs", "drift", "--clickhouse-dsn", db.DSN(), "--policy", pol, "--from", "yesterday"); err == nil || !strings.Contains(err.Error(), "--from") {
		t.Errorf("jobs drift --from yesterday: err = %v, want a --from error", err)
	}
}
