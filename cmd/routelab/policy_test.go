package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routelab/routelab/lab/labtest"
)

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), args, func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("routelab %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// The lab loop from the CLI, small: generate, sim, train, eval --json,
// show --json, diff --json.
func TestLabLoopCLI(t *testing.T) {
	labtest.Heavy(t)
	dir := t.TempDir()
	w1, w2 := filepath.Join(dir, "w1.jsonl"), filepath.Join(dir, "w2.jsonl")
	logged, pol := filepath.Join(dir, "logged.jsonl"), filepath.Join(dir, "p.json")
	explore := filepath.Join("..", "..", "datasets", "policies", "explore.json")
	mustRun(t, "workload", "generate", "--seed", "1", "--n", "4000", "--out", w1)
	mustRun(t, "workload", "generate", "--seed", "2", "--n", "3000", "--out", w2)
	mustRun(t, "sim", "--workload", w1, "--policy", explore, "--out", logged)
	mustRun(t, "policy", "train", "--logged", logged, "--out", pol)

	var rep struct {
		Policies []struct {
			Name        string  `json:"name"`
			SuccessRate float64 `json:"success_rate"`
			MeanCost    float64 `json:"mean_cost_usd"`
			P50         float64 `json:"p50_latency_ms"`
			P95         float64 `json:"p95_latency_ms"`
			Regret      float64 `json:"regret"`
		} `json:"policies"`
		Calibration struct {
			ECE   *float64 `json:"ece"`
			Brier *float64 `json:"brier"`
		} `json:"calibration"`
	}
	out := mustRun(t, "policy", "eval", "--policy", pol, "--workload", w2, "--json", "--frontier=false")
	if err := json.Unmarshal([]byte(lastLine(out)), &rep); err != nil {
		t.Fatalf("eval --json last line is not JSON: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, p := range rep.Policies {
		names[p.Name] = true
		if p.SuccessRate <= 0 || p.SuccessRate > 1 || p.MeanCost <= 0 || p.P95 < p.P50 {
			t.Errorf("implausible row %+v", p)
		}
	}
	for _, want := range []string{"trained", "rules-only", "random", "oracle", "always:sim-lite", "always:sim-premium", "always:sim-hero"} {
		if !names[want] {
			t.Errorf("eval lacks row %q (have %v)", want, names)
		}
	}
	if rep.Calibration.ECE == nil || rep.Calibration.Brier == nil {
		t.Errorf("eval lacks calibration.ece/brier")
	}

	var show map[string]any
	if err := json.Unmarshal([]byte(lastLine(mustRun(t, "policy", "show", "--json", pol))), &show); err != nil || show["checksum"] == "" {
		t.Errorf("policy show --json = %v, %v", show, err)
	}
	var diff struct {
		Changes []string `json:"changes"`
		Differ  int      `json:"routed_differently"`
	}
	rules := filepath.Join("..", "..", "datasets", "policies", "rules.json")
	if err := json.Unmarshal([]byte(lastLine(mustRun(t, "policy", "diff", "--json", "--workload", w2, rules, pol))), &diff); err != nil {
		t.Fatal(err)
	}
	if len(diff.Changes) == 0 || diff.Differ == 0 {
		t.Errorf("diff rules vs trained = %+v, want changes and re-routed requests", diff)
	}

	// A tampered policy is refused.
	b, _ := os.ReadFile(pol)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, bytes.Replace(b, []byte(`"epsilon": 0.02`), []byte(`"epsilon": 0.5`), 1), 0o644)
	var o, e bytes.Buffer
	if err := run(context.Background(), []string{"policy", "show", bad}, func(string) string { return "" }, &o, &e); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("show(tampered) = %v, want a checksum error", err)
	}
}

func TestLabBadInput(t *testing.T) {
	tests := [][]string{
		{"sim", "--workload", "nope.jsonl", "--policy", "nope.json"},
		{"policy", "train", "--logged", "x"},
		{"policy", "eval", "--policy", "nope.json", "--workload", "w.jsonl"},
		{"policy", "bogus"},
		{"workload", "generate", "--n", "0"},
	}
	for _, args := range tests {
		var o, e bytes.Buffer
		if err := run(context.Background(), args, func(string) string { return "" }, &o, &e); err == nil {
			t.Errorf("routelab %v = nil error, want one", args)
		}
	}
}
