package jobs_test

import (
	"context"
	"strings"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/jobs"
)

// EvalPolicy runs the policy and every baseline on the same requests: the
// policy first, the oracle last with no regret, and the targets computed.
func TestEvalPolicy(t *testing.T) {
	p, err := datasets.Policy("explore")
	if err != nil {
		t.Fatal(err)
	}
	items, err := datasets.Generate(5, 400)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := jobs.EvalPolicy(context.Background(), p, items, jobs.EvalConfig{WorldSeed: 7, Workers: 2, Frontier: true, Progress: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rep.Policies {
		names = append(names, r.Name)
	}
	want := 3 + len(p.Models) + 1
	if len(names) != want || names[0] != "explore" || names[1] != "rules-only" || names[2] != "random" ||
		!strings.HasPrefix(names[3], "always:") || names[len(names)-1] != "oracle" {
		t.Fatalf("rows = %v, want explore, rules-only, random, always:* x%d, oracle", names, len(p.Models))
	}
	oracle := rep.Policies[len(rep.Policies)-1]
	if oracle.Regret != 0 || oracle.SuccessRate < rep.Policies[0].SuccessRate {
		t.Errorf("oracle regret %v success %v, policy success %v: the oracle is the ceiling", oracle.Regret, oracle.SuccessRate, rep.Policies[0].SuccessRate)
	}
	if rep.Requests != 400 || rep.Calibration.N == 0 || rep.Calibration.N > 400 || rep.Frontier != nil {
		t.Errorf("requests %d, calibration n %d, frontier %v; want 400, (0, 400] and none (no classifier)", rep.Requests, rep.Calibration.N, rep.Frontier)
	}
	for _, k := range []string{"best_single", "within_1pt_of_best", "beats_rules_only", "ece_at_most_0.03"} {
		if _, ok := rep.Targets[k]; !ok {
			t.Errorf("targets lack %s: %v", k, rep.Targets)
		}
	}
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "\nrouter ") || !strings.Contains(b.String(), "\noracle ") || !strings.Contains(b.String(), "calibration of explore: ECE ") {
		t.Errorf("WriteText lacks the table header:\n%s", b.String())
	}
}
