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

	"github.com/routelab/routelab/devstack"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/jobstest"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server/client"
)

// devTraffic sends image requests to dev's API from a few workers until
// the returned stop is called, and counts the answered ones.
func devTraffic(t *testing.T, info devstack.Info, workers int) (ok *atomic.Int64, stop func()) {
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

// TestCanaryAgainstDev runs `jobs pipeline --push` against a real `routelab
// dev` (kfake broker, ClickHouse, ingest, serve on 127.0.0.1) under live
// traffic: a candidate that routes like the live policy passes the canary
// and becomes live, and its canary arm's decisions in ClickHouse were
// routed by the staged candidate (the runner checks that before a pass).
// The runner's rollback, timeout and routed-check paths are unit tests in
// jobs (canary_test.go).
func TestCanaryAgainstDev(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts routelab dev and sends traffic for about a minute")
	}
	dir := t.TempDir()
	info, _ := startDevForTest(t, dir)
	ctx := context.Background()
	adm := client.New(info.Admin, info.AdminToken, "test")
	live, err := adm.Policy(ctx)
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
	served, stopTraffic := devTraffic(t, info, 4)

	// OPE replays the held-out fifth of the live policy's logged
	// decisions and needs 100 of them: 1,000 simulated requests of the
	// live policy, logged two hours ago (the canary's own traffic would
	// take minutes to reach that, longer under -race)
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
	now, err := adm.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if now.Version != good.Version {
		t.Errorf("live policy after the pipeline = %s, want %s", now.Version, good.Version)
	}
	running, err := adm.Experiments(ctx, "running")
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 0 {
		t.Errorf("experiments still running after the pipeline: %v", running)
	}
	// the canary arm really routed with the staged candidate (decisions in
	// an experiment arm: after the canary, none runs)
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".decisions WHERE policy_version = ? AND length(arm_experiments) > 0", good.Version).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("no canary-arm decision routed by the staged candidate %s", good.Version)
	}
	stopTraffic()
	t.Logf("%d requests answered", served.Load())
}
