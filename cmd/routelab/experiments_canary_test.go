package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/lab/labtest"
)

// TestFaultFlakyCanaryRolledBack is the canary story end to end inside
// `routelab dev`: the shipped canary spec pins the pin-only sim-flaky model
// (its safety filter refuses about a third of prompts); live traffic from
// loadgen reaches it through the canary arm; dev's guardrail monitor reads
// the arms from ClickHouse, sees error_rate breached and rolls the canary
// back by itself; the rollback shows in the CLI and as an audit row in
// ClickHouse. The test ramps the canary to all of its layer by hand first,
// so that every generate request lands in an arm and a hundred or two give
// both arms the guardrails' 20 units (at 50% the test took five minutes of
// a loaded 2-core machine).
func TestFaultFlakyCanaryRolledBack(t *testing.T) {
	labtest.Heavy(t) // starts routelab dev (ClickHouse, broker) and drives live traffic
	t.Parallel()
	dir := t.TempDir()
	info, _ := startDevForTest(t, dir, "--experiments-monitor-every", "1s")
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(context.Background(), append(args, "--data-dir", dir), func(string) string { return "" }, &out, &errb); err != nil {
			t.Fatalf("routelab %s: %v: %s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	lastLine := func(s string) []byte {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		return []byte(lines[len(lines)-1])
	}

	var s experiments.Spec
	if err := json.Unmarshal(lastLine(cli("experiments", "create", "-f", "../../datasets/experiments/canary.json", "--start", "--json")), &s); err != nil {
		t.Fatal(err)
	}
	cli("experiments", "ramp", s.ID, "--traffic", "1", "--reason", "test: reach the guardrails' units quickly")

	// Traffic until the monitor has rolled the canary back (or 1,500 requests).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loadDone := make(chan error, 1)
	go func() {
		loadDone <- run(ctx, []string{"loadgen", "--data-dir", dir, "--requests", "1500", "--users", "200", "--concurrency", "8"},
			func(string) string { return "" }, io.Discard, io.Discard)
	}()
	deadline := time.Now().Add(devWait)
	for {
		if err := json.Unmarshal(lastLine(cli("experiments", "show", s.ID, "--json")), &s); err != nil {
			t.Fatal(err)
		}
		if s.Status != experiments.StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("canary still running after %v: %+v", devWait, s)
		}
		select {
		case err := <-loadDone:
			if err != nil {
				t.Fatalf("loadgen: %v", err)
			}
			loadDone = nil // done: poll the monitor's verdict, not a closed channel in a spin
		case <-time.After(500 * time.Millisecond):
		}
	}
	cancel()
	if !s.RolledBack || s.Status != experiments.StatusStopped || !strings.Contains(s.StopReason, "error_rate") {
		t.Fatalf("canary ended as status %s, rolled_back %v, reason %q; want stopped, rolled back for error_rate", s.Status, s.RolledBack, s.StopReason)
	}
	if out := cli("experiments", "list"); !strings.Contains(out, s.ID) || !strings.Contains(out, "stopped (rolled back)") {
		t.Errorf("experiments list does not show the rollback:\n%s", out)
	}

	// The canary arm's requests went to sim-flaky and were refused; the
	// baseline arm's never reached it.
	q := "SELECT arm, countIf(has(attempt_models, 'sim-flaky')), countIf(error_code = 'content_policy'), count() FROM " + info.Database +
		".decisions ARRAY JOIN arm_names AS arm WHERE has(arm_experiments, '" + s.ID + "') GROUP BY arm ORDER BY arm FORMAT TSV"
	rows := map[string][]int{}
	for _, line := range strings.Split(chQuery(t, info.ClickHouseHTTP, q), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			continue
		}
		for _, v := range f[1:] {
			n, _ := strconv.Atoi(v)
			rows[f[0]] = append(rows[f[0]], n)
		}
	}
	if c := rows["canary"]; len(c) != 3 || c[0] == 0 || c[1] == 0 {
		t.Errorf("canary arm rows (sim-flaky attempts, content_policy errors, requests) = %v, want sim-flaky refusals", c)
	}
	if b := rows["baseline"]; len(b) != 3 || b[0] != 0 || b[2] == 0 {
		t.Errorf("baseline arm rows (sim-flaky attempts, content_policy errors, requests) = %v, want requests and no sim-flaky", b)
	}

	// The rollback is an audit row in ClickHouse (ingested asynchronously).
	aq := "SELECT count() FROM " + info.Database + ".audit WHERE action = 'canary.rollback' AND subject = '" + s.ID + "' AND position(body, 'error_rate') > 0"
	for chQuery(t, info.ClickHouseHTTP, aq) != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("no canary.rollback audit row in ClickHouse for %s", s.ID)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
