package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/jobstest"
	"github.com/routelab/routelab/router"
)

// devTraffic sends image requests to dev's API from a few workers until
// the returned stop is called, and counts the answered ones.
func devTraffic(t *testing.T, info devInfo, workers int) (ok *atomic.Int64, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ok = &atomic.Int64{}
	prompts := []string{
		"an abstract background in teal and orange",
		"an abstract gradient background, soft blue",
		"an abstract background of flowing purple shapes",
	}
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"prompt":%q,"user":"u%d-%d"}`, prompts[(i+w)%len(prompts)], w, i)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, info.API+"/v1/images", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+info.APIKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				}
			}
		}()
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	t.Cleanup(stop)
	return ok, stop
}

// variant is live renamed (so a new version, routing the same way) with
// change applied.
func variant(t *testing.T, live *router.Policy, name string, change func(p *router.Policy)) *router.Policy {
	t.Helper()
	b, err := live.JSON()
	if err != nil {
		t.Fatal(err)
	}
	p, err := router.ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	p.Name, p.Version, p.Checksum = name, "", ""
	if change != nil {
		change(p)
	}
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCanaryAgainstDev runs policy canaries against a real `routelab dev`
// (kfake broker, ClickHouse, ingest, serve on 127.0.0.1) under live
// traffic: a candidate that sends every request to the premium model is
// rolled back on the cost guardrail and never becomes live; a candidate
// that routes like the live policy passes the canary through `jobs
// pipeline --push` and becomes live, and its canary arm's decisions in
// ClickHouse were routed by the staged candidate.
func TestCanaryAgainstDev(t *testing.T) {
	if testing.Short() {
		t.Skip("starts routelab dev and sends traffic for about a minute")
	}
	dir := t.TempDir()
	info, _ := startDevForTest(t, dir)
	ctx := context.Background()
	adm := newAdmin(info.Admin, info.AdminToken, "test")
	f := &jobFlags{dataDir: dir}
	live, err := f.livePolicy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, db, err := ingest.Open(ctx, "clickhouse://"+info.ClickHouse+"/"+info.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// guardrails for a test: cost per image (the live explore policy
	// averages $0.03-0.06 over a few dozen requests, all-premium $0.167)
	// and an error-rate ceiling; the default point-estimate
	// guardrails are tuned for hundreds of units per arm
	spec := filepath.Join(dir, "canary-spec.json")
	if err := os.WriteFile(spec, []byte(`{"name":"t","owner":"test","layer":"x","unit":"request","primary_metric":"success_rate",
		"arms":[{"name":"a","weight":1},{"name":"b","weight":1}],
		"guardrails":[{"metric":"cost_per_image","max_increase":0.08,"min_units":30},{"metric":"error_rate","max":0.5,"min_units":30}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// One step at full traffic: the rollback needs 30 units in each arm,
	// which half the traffic took twice as long to bring (two minutes of a
	// loaded 2-core machine); the ramp is the pipeline subtest's. Timeout
	// is the canary's own deadline, generous so that a slow machine only
	// makes it slower.
	cfg := canaryConfig{Steps: []float64{1}, StepDuration: 2 * time.Second, MinUnits: 30, Timeout: devWait,
		Poll: time.Second, Unit: "request", Layer: "policy-canary", SpecFile: spec}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	served, stopTraffic := devTraffic(t, info, 4)

	t.Run("all-premium candidate is rolled back", func(t *testing.T) {
		bad := variant(t, live, "all-premium", func(p *router.Policy) {
			p.Rules = append([]router.Rule{{Name: "everything-premium", Model: "sim-premium"}}, p.Rules...)
			p.Epsilon = 0
		})
		var lines []string
		r := &canaryRunner{adm: adm, reader: chexp.NewReader(conn, db), conn: conn, db: db, cfg: cfg, now: time.Now,
			progress: func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)); t.Logf(f, a...) }}
		res, err := r.Run(ctx, bad, live)
		if err != nil {
			t.Fatal(err)
		}
		if res.Passed || !strings.Contains(res.Reason, "cost_per_image") {
			t.Fatalf("canary of %s = passed %v (%s), want a rollback on cost_per_image", bad.Version, res.Passed, res.Reason)
		}
		var sp experiments.Spec
		if err := adm.do(ctx, http.MethodGet, "/admin/experiments/"+res.Experiment, nil, &sp); err != nil {
			t.Fatal(err)
		}
		if sp.Status != experiments.StatusStopped || !sp.RolledBack {
			t.Errorf("experiment after rollback: status %s rolled_back %v", sp.Status, sp.RolledBack)
		}
		now, err := f.livePolicy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if now.Version != live.Version {
			t.Errorf("live policy after a rolled-back canary = %s, want %s", now.Version, live.Version)
		}
		// the candidate arm really routed with the staged candidate
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".decisions WHERE policy_version = ? AND model = 'sim-premium'", bad.Version).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("no decision routed by the staged candidate %s", bad.Version)
		}
	})

	t.Run("pipeline promotes a candidate that holds", func(t *testing.T) {
		// OPE replays the held-out fifth of the live policy's logged
		// decisions and needs 100 of them: 1,000 simulated requests of the
		// live policy, logged two hours ago (the canary's own traffic
		// would take minutes to reach that, longer under -race)
		jobstest.Serve(t, &ingesttest.DB{Conn: conn, Database: db}, live, 3, 1000, time.Now().Add(-2*time.Hour), false)
		good := variant(t, live, "same-routes", nil)
		candFile := filepath.Join(dir, "good.json")
		b, err := good.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(candFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := runCLI(t, "jobs", "pipeline", "--data-dir", dir, "--candidate", candFile, "--push", "--json",
			"--drift-blocks=false", "--margin", "0.05", "--canary-spec", spec, "--canary-steps", "0.5,1", "--canary-step-duration", "2s",
			"--canary-min-units", "30", "--canary-poll", "1s", "--canary-timeout", devWait.String())
		t.Log(stderr)
		if err != nil {
			t.Fatal(err)
		}
		var rep jobs.PipelineReport
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
			t.Fatalf("pipeline report: %v\n%s", err, stdout)
		}
		got := ""
		for _, s := range rep.Steps {
			got += s.Name + ":" + s.Status + " "
		}
		if !rep.Pushed || rep.Version != good.Version || got != "recalibrate:skipped ope:ok drift:ok canary:ok push:ok " {
			t.Fatalf("pipeline = %s pushed %v version %s (stopped at %q: %s), want %s pushed after a canary", got, rep.Pushed, rep.Version, rep.Stopped, rep.Reason, good.Version)
		}
		now, err := f.livePolicy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if now.Version != good.Version {
			t.Errorf("live policy after the pipeline = %s, want %s", now.Version, good.Version)
		}
		var running []experiments.Spec
		var out struct {
			Experiments []experiments.Spec `json:"experiments"`
		}
		if err := adm.do(ctx, http.MethodGet, "/admin/experiments?status=running", nil, &out); err != nil {
			t.Fatal(err)
		}
		running = out.Experiments
		if len(running) != 0 {
			t.Errorf("experiments still running after the pipeline: %v", running)
		}
	})
	stopTraffic()
	t.Logf("%d requests answered", served.Load())
}
