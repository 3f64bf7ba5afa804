package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs"
)

// canaryTraffic writes decisions of a canary's phase: units per arm, each
// with a few requests; the canary arm errors at canaryErr.
func canaryTraffic(t *testing.T, db *ingesttest.DB, s experiments.Spec, units int, canaryErr float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	b := ingest.NewBatch()
	n := 0
	for u := range units * 2 {
		arm := s.Arms[u%2].Name
		errRate := 0.01
		if arm != s.Control {
			errRate = canaryErr
		}
		user := fmt.Sprintf("user-%d", u)
		for range 3 {
			n++
			d := &events.Decision{
				Header: events.Header{EventID: fmt.Sprintf("d%d", n), SchemaVersion: 1, TS: s.PhaseStarted + int64(1000*n), Tenant: "acme", RequestID: fmt.Sprintf("r%d", n)},
				Unit:   user, Status: "ok", QAPass: true, Images: 1, LatencyMS: 2000, CostUSD: 0.04,
				Arms: []events.Arm{{Experiment: s.ID, Arm: arm, Layer: s.Layer, Phase: s.Phase, Unit: user}},
			}
			if rng.Float64() < errRate {
				d.Status, d.QAPass, d.Images, d.CostUSD = "error", false, 0, 0
			}
			b.AddDecision(d)
		}
	}
	if err := ingest.NewWriter(db.Conn, db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func mustCreate(t *testing.T, url, specFile string) experiments.Spec {
	t.Helper()
	var out bytes.Buffer
	args := []string{"experiments", "create", "-f", specFile, "--start", "--json", "--admin-url", url, "--admin-token", "adm"}
	if err := run(context.Background(), args, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var s experiments.Spec
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func runAnalyze(t *testing.T, db *ingesttest.DB, url string) jobs.AnalyzeReport {
	t.Helper()
	var out bytes.Buffer
	args := []string{"jobs", "analyze", "--clickhouse-dsn", db.DSN(), "--admin-url", url, "--admin-token", "adm", "--report-dir", t.TempDir(), "--json"}
	if err := run(context.Background(), args, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rep jobs.AnalyzeReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	return rep
}

func TestJobsAnalyzeRollsBackFailingCanary(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	_, adm, prod := mustServe(t)
	url := adm.URL() // the admin listener
	s := mustCreate(t, url, "../../datasets/experiments/canary.json")
	canaryTraffic(t, db, s, 60, 0.4)

	rep := runAnalyze(t, db, url)
	if len(rep.Experiments) != 1 || rep.Experiments[0].Verdict.Action != experiments.ActionRollback || !rep.Experiments[0].Applied {
		t.Fatalf("analyze = %+v", rep.Experiments)
	}
	after, err := adm.Experiment(context.Background(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != experiments.StatusStopped || !after.RolledBack || !strings.Contains(after.StopReason, "error_rate") {
		t.Fatalf("after analyze: status %s rolled_back %v reason %q", after.Status, after.RolledBack, after.StopReason)
	}
	var rollback *events.Audit
	for _, e := range prod.Events() {
		if a, ok := e.Value.(*events.Audit); ok && a.Action == "canary.rollback" && a.Subject == s.ID {
			rollback = a
		}
	}
	if rollback == nil || !strings.Contains(rollback.Body, "error_rate") {
		t.Fatalf("no canary.rollback audit event with the reason: %+v", rollback)
	}
	// the job's own report row lands in ClickHouse
	if got := db.Query(t, "SELECT count() FROM audit WHERE action = 'jobs.analyze' AND position(body, 'rollback') > 0"); got != "1" {
		t.Errorf("jobs.analyze audit rows = %s", got)
	}
	// the CLI shows it
	var out bytes.Buffer
	if err := run(context.Background(), []string{"experiments", "list", "--admin-url", url, "--admin-token", "adm"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "stopped (rolled back)") {
		t.Errorf("list = %s", out.String())
	}
}

func TestJobsAnalyzeAdvancesHealthyCanary(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	_, adm, _ := mustServe(t)
	url := adm.URL() // the admin listener
	raw, err := os.ReadFile("../../datasets/experiments/canary.json")
	if err != nil {
		t.Fatal(err)
	}
	fast := filepath.Join(t.TempDir(), "canary.json")
	if err := os.WriteFile(fast, []byte(strings.Replace(string(raw), `"min_duration": "2m"`, `"min_duration": "0s"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := mustCreate(t, url, fast)
	canaryTraffic(t, db, s, 60, 0.01)
	rep := runAnalyze(t, db, url)
	e := rep.Experiments[0]
	if e.Verdict.Action != experiments.ActionAdvance || !e.Applied || e.Verdict.Next != 0.05 {
		t.Fatalf("analyze = %+v", e.Verdict)
	}
	// the judgement was a look: recorded for the running always-valid results
	if got := db.Query(t, "SELECT count() > 0 FROM experiment_looks WHERE experiment = '"+s.ID+"'"); got != "1" {
		t.Errorf("the monitor's look was not recorded in experiment_looks")
	}
}
