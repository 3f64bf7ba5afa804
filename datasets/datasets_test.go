package datasets_test

import (
	"testing"

	"github.com/routelab/routelab/datasets"
)

func TestCatalog(t *testing.T) {
	c, err := datasets.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	pinOnly := 0
	for _, m := range c.Models {
		if m.PinOnly {
			pinOnly++
		}
	}
	if len(c.Models) != 7 || pinOnly != 1 {
		t.Errorf("default catalog has %d models (%d pin-only), want 7 (6 routable, sim-flaky pin-only)", len(c.Models), pinOnly)
	}
	for _, m := range c.Models {
		if !m.Simulated || m.Source == "" {
			t.Errorf("model %s: simulated %v source %q, want simulated with a cited source", m.Name, m.Simulated, m.Source)
		}
	}
}

// Shipped policies carry a checksum that matches their content (a policy
// with an empty checksum would be sealed on load, hiding an edit).
func TestShippedPoliciesSealed(t *testing.T) {
	for _, name := range []string{"default", "explore", "rules", "canary-flaky"} {
		p, err := datasets.Policy(name)
		if err != nil {
			t.Fatalf("Policy(%s) = %v", name, err)
		}
		b, _ := datasets.PolicyFile(name)
		if p.Checksum == "" || !contains(b, p.Checksum) {
			t.Errorf("shipped policy %s has no stored checksum", name)
		}
	}
}

func contains(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return true
		}
	}
	return false
}

func TestGenerateReproducible(t *testing.T) {
	a, err := datasets.Generate(42, 3000)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := datasets.Generate(42, 3000)
	c, _ := datasets.Generate(43, 3000)
	if len(a) != 3000 {
		t.Fatalf("Generate(n=3000) gave %d items", len(a))
	}
	same := 0
	tasks := map[string]int{}
	sources := map[string]int{}
	for i := range a {
		if a[i].Request != b[i].Request || a[i].Task != b[i].Task {
			t.Fatalf("Generate(42) differs at %d: %+v vs %+v", i, a[i], b[i])
		}
		if a[i].Request.Prompt == c[i].Request.Prompt {
			same++
		}
		tasks[a[i].Task]++
		sources[a[i].Source]++
	}
	if same > 300 {
		t.Errorf("seeds 42 and 43 share %d of 3000 prompts, want different workloads", same)
	}
	if len(tasks) != 8 || sources["parti"] == 0 || sources["template"] == 0 {
		t.Errorf("tasks %v sources %v, want all 8 tasks from both sources", tasks, sources)
	}
}

func TestPartiPrompts(t *testing.T) {
	ps, err := datasets.PartiPrompts()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) < 1600 {
		t.Fatalf("loaded %d PartiPrompts, want 1632", len(ps))
	}
	tests := []struct {
		give string
		want string
	}{
		{`A green sign that says "Very Deep Learning" and is at the edge of the Grand Canyon.`, "text_render"},
		{"bond", "abstract_background"},
	}
	for _, tt := range tests {
		found := false
		for _, p := range ps {
			if p.Prompt == tt.give {
				found = true
				if p.Task != tt.want {
					t.Errorf("task(%q) = %s, want %s", tt.give, p.Task, tt.want)
				}
			}
		}
		if !found {
			t.Errorf("prompt %q not loaded", tt.give)
		}
	}
}

// TestVendorsCatalog: the shipped vendors catalog loads, cites a source
// beside every native size table and price, and maps a 3:2 request to
// Gemini's documented 1248x832.
func TestVendorsCatalog(t *testing.T) {
	c, err := datasets.NamedCatalog("vendors")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Models {
		if m.Source == "" {
			t.Errorf("model %s has no source", m.Name)
		}
		if len(m.NativeSizes) > 0 && m.NativeSizesSource == "" {
			t.Errorf("model %s has native sizes without a source", m.Name)
		}
	}
	if w, h := c.NativeSize("gemini-2.5-flash-image", 1536, 1024); w != 1248 || h != 832 {
		t.Errorf("gemini-2.5-flash-image answers 1536x1024 at %dx%d, want 1248x832", w, h)
	}
	if _, err := datasets.NamedCatalog("nope"); err == nil {
		t.Error("NamedCatalog(nope) = nil error")
	}
}

// TestLoadCatalogByName: --catalog takes a shipped catalog's name as well
// as a file.
func TestLoadCatalogByName(t *testing.T) {
	c, err := datasets.LoadCatalog("vendors")
	if err != nil || c.DefaultModel != "gemini-2.5-flash-image" {
		t.Fatalf("LoadCatalog(vendors) = default %q, %v", c.DefaultModel, err)
	}
	if _, err := datasets.LoadCatalog("missing.json"); err == nil {
		t.Error("LoadCatalog(missing.json) = nil error")
	}
}

// The policy `routelab dev` makes live is a trained one that explores
// little; explore (80%) stays shipped for collecting data on purpose.
func TestDefaultPolicyTrainedWithSmallEpsilon(t *testing.T) {
	p, err := datasets.Policy("default")
	if err != nil {
		t.Fatal(err)
	}
	if p.Classifier == nil || p.Epsilon <= 0 || p.Epsilon > 0.1 {
		t.Errorf("default policy: classifier %v, epsilon %v; want a trained classifier and 0 < epsilon <= 0.1", p.Classifier != nil, p.Epsilon)
	}
	e, err := datasets.Policy("explore")
	if err != nil || e.Epsilon < 0.5 {
		t.Errorf("explore policy: %v, epsilon %v; want it shipped, exploring", err, e)
	}
}
