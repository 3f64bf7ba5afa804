package router_test

import (
	"encoding/json"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

func mustPolicy(t testing.TB, name string) *router.Policy {
	t.Helper()
	p, err := datasets.Policy(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type downHealth map[string]bool

func (d downHealth) Usable(provider, model string) bool { return !d[model] }

func TestDecideRulesAndConstraints(t *testing.T) {
	p := mustPolicy(t, "rules")
	tests := []struct {
		name     string
		give     router.Request
		health   router.Health
		want     string
		wantRule string
		relaxed  bool
	}{
		{"default model", router.Request{ID: "a", Mode: router.ModeGenerate, Prompt: "a cat on a sofa"}, nil, "sim-fast", "", false},
		{"edit with references", router.Request{ID: "b", Mode: router.ModeEdit, Prompt: "put her in a forest", RefCount: 3, EditDepth: 1}, nil, "sim-editor", "edit-with-references", false},
		{"preserve subject", router.Request{ID: "c", Mode: router.ModeEdit, Prompt: "new jacket", RefCount: 1, EditDepth: 1, Constraints: router.Constraints{PreserveSubject: true}}, nil, "sim-editor", "preserve-subject", false},
		{"quoted text", router.Request{ID: "d", Mode: router.ModeGenerate, Prompt: `a poster that says "OPEN LATE"`}, nil, "sim-typo", "quoted-text", false},
		{"text heavy", router.Request{ID: "e", Mode: router.ModeGenerate, Prompt: "a cafe menu", Constraints: router.Constraints{TextHeavy: true}}, nil, "sim-typo", "text-heavy", false},
		{"pin wins over rules", router.Request{ID: "f", Mode: router.ModeGenerate, Prompt: `sign "HI"`, Pin: "sim-hero"}, nil, "sim-hero", "pin", false},
		{"rule model unhealthy falls through", router.Request{ID: "g", Mode: router.ModeGenerate, Prompt: `sign "HI"`}, downHealth{"sim-typo": true}, "sim-fast", "", false},
		{"latency budget excludes slow default", router.Request{ID: "h", Mode: router.ModeGenerate, Prompt: "a cat", Constraints: router.Constraints{MaxLatencyMS: 2500}}, nil, "sim-lite", "", false},
		{"cost budget", router.Request{ID: "i", Mode: router.ModeGenerate, Prompt: "a cat", Constraints: router.Constraints{MaxCostUSD: 0.01}}, nil, "sim-lite", "", false},
		{"impossible budget is relaxed", router.Request{ID: "j", Mode: router.ModeGenerate, Prompt: "a cat", Constraints: router.Constraints{MaxLatencyMS: 10}}, nil, "sim-fast", "", true},
		{"only hero has 2048", router.Request{ID: "k", Mode: router.ModeGenerate, Prompt: "a cat", Width: 2048, Height: 2048}, nil, "sim-hero", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := router.Decide(tt.give, p, tt.health)
			if d.Model != tt.want || d.Rule != tt.wantRule || d.Relaxed != tt.relaxed {
				t.Errorf("Decide() = model %q rule %q relaxed %v (reason %q), want %q %q %v", d.Model, d.Rule, d.Relaxed, d.Reason, tt.want, tt.wantRule, tt.relaxed)
			}
			if d.Propensity != 1 {
				t.Errorf("Decide() propensity = %v, want 1 without exploration", d.Propensity)
			}
			if d.PolicyVersion != p.Version {
				t.Errorf("Decide() policy version = %q, want %q", d.PolicyVersion, p.Version)
			}
		})
	}
}

// A pinned model's fallbacks start with the policy's own choice: a poster
// pinned to the cheap generalist escalates to the typography model, not to
// the next cheapest generalist.
func TestDecidePinFallsBackToPolicyChoice(t *testing.T) {
	p := mustPolicy(t, "rules")
	tests := []struct {
		give router.Request
		want string // first fallback
	}{
		{router.Request{ID: "a", Mode: router.ModeGenerate, Prompt: "A poster that says \u201cGRAND OPENING\u201d", Pin: "sim-lite"}, "sim-typo"},
		{router.Request{ID: "b", Mode: router.ModeGenerate, Prompt: "A banner with the words 'SUMMER SALE'", Pin: "sim-lite"}, "sim-typo"},
		{router.Request{ID: "c", Mode: router.ModeGenerate, Prompt: "a cat on a sofa", Pin: "sim-lite"}, "sim-fast"},
		{router.Request{ID: "d", Mode: router.ModeGenerate, Prompt: "a cat on a sofa", Pin: "sim-fast"}, "sim-lite"},
		{router.Request{ID: "e", Mode: router.ModeGenerate, Prompt: `sign "HI"`, Pin: "sim-typo"}, "sim-lite"},
	}
	for _, tt := range tests {
		d := router.Decide(tt.give, p, nil)
		if d.Model != tt.give.Pin || len(d.Fallbacks) == 0 || d.Fallbacks[0] != tt.want {
			t.Errorf("Decide(%q pinned to %s) = %s, fallbacks %v; want the pin, then %s", tt.give.Prompt, tt.give.Pin, d.Model, d.Fallbacks, tt.want)
		}
		seen := map[string]bool{d.Model: true}
		for _, m := range d.Fallbacks {
			if seen[m] {
				t.Errorf("Decide(%q) fallbacks %v repeat %s", tt.give.Prompt, d.Fallbacks, m)
			}
			seen[m] = true
		}
	}
}

func TestDecideNoModel(t *testing.T) {
	p := mustPolicy(t, "rules")
	d := router.Decide(router.Request{ID: "x", Mode: router.ModeEdit, Prompt: "x", RefCount: 9, EditDepth: 1}, p, nil)
	if d.Model != "" || d.Reason == "" {
		t.Errorf("Decide(9 refs) = %q reason %q, want no model and a reason", d.Model, d.Reason)
	}
}

func TestDecideReset(t *testing.T) {
	p := mustPolicy(t, "rules") // edit_depth_limit 10
	for _, tt := range []struct {
		depth     int
		wantReset bool
		wantDepth int
	}{{1, false, 1}, {9, false, 9}, {10, true, router.ResetDepth}, {14, true, router.ResetDepth}} {
		d := router.Decide(router.Request{ID: "r", Mode: router.ModeEdit, Prompt: "make it blue", RefCount: 1, EditDepth: tt.depth}, p, nil)
		if d.Reset != tt.wantReset || d.EditDepth != tt.wantDepth {
			t.Errorf("Decide(depth %d) = reset %v depth %d, want %v %d", tt.depth, d.Reset, d.EditDepth, tt.wantReset, tt.wantDepth)
		}
	}
}

// TestExplorationPropensity checks that propensities are exact: the
// empirical share of each model over many request ids matches the logged
// propensity, and decisions replay identically.
func TestExplorationPropensity(t *testing.T) {
	p := mustPolicy(t, "explore")
	const n = 40000
	count := map[string]int{}
	prop := map[string]float64{}
	for i := 0; i < n; i++ {
		req := router.Request{ID: "req-" + itoa(i), Mode: router.ModeGenerate, Prompt: "a cat on a sofa"}
		d := router.Decide(req, p, nil)
		if again := router.Decide(req, p, nil); again.Model != d.Model || again.Propensity != d.Propensity {
			t.Fatalf("Decide(%s) not deterministic: %s then %s", req.ID, d.Model, again.Model)
		}
		count[d.Model]++
		prop[d.Model] = d.Propensity
	}
	if len(count) != 6 {
		t.Fatalf("explored %d models, want all 6: %v", len(count), count)
	}
	for m, c := range count {
		share := float64(c) / n
		if diff := share - prop[m]; diff > 0.01 || diff < -0.01 {
			t.Errorf("model %s chosen %.4f of the time, logged propensity %.4f", m, share, prop[m])
		}
	}
	// greedy is the default model: 1-eps + eps/6
	if want := 0.2 + 0.8/6; prop["sim-fast"] < want-1e-12 || prop["sim-fast"] > want+1e-12 {
		t.Errorf("propensity of greedy = %v, want %v", prop["sim-fast"], want)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestPolicyChecksum(t *testing.T) {
	b, err := datasets.PolicyFile("rules")
	if err != nil {
		t.Fatal(err)
	}
	p, err := router.ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := router.ParsePolicy(out); err != nil {
		t.Fatalf("ParsePolicy(sealed) = %v", err)
	}
	p.Epsilon = 0.5
	tampered, _ := json.Marshal(p)
	if _, err := router.ParsePolicy(tampered); err == nil {
		t.Fatalf("ParsePolicy(tampered) = nil error, want checksum mismatch")
	}
}

func TestDecideAllocs(t *testing.T) {
	p := mustPolicy(t, "explore")
	req := router.Request{ID: "alloc", Mode: router.ModeGenerate, Prompt: `A poster with the headline "JAZZ NIGHT" and a trumpet`}
	if n := testing.AllocsPerRun(200, func() { router.Decide(req, p, nil) }); n > 5 {
		t.Errorf("Decide allocates %v times, want <= 5", n)
	}
}
