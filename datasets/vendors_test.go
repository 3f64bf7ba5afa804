package datasets_test

import (
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

var update = flag.Bool("update", false, "rewrite policies/vendors.json's model snapshot from catalogs/vendors.json")

// TestVendorsPolicyMatchesCatalog: the vendors policy routes between
// exactly the vendors catalog's models (a policy carries its catalog
// snapshot), so editing the catalog without refreshing the policy fails
// here. `go test ./datasets -run VendorsPolicy -update` refreshes it.
func TestVendorsPolicyMatchesCatalog(t *testing.T) {
	cat, err := datasets.NamedCatalog("vendors")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		b, err := os.ReadFile("policies/vendors.json")
		if err != nil {
			t.Fatal(err)
		}
		var p router.Policy
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		p.Models, p.DefaultModel, p.Version, p.Checksum = cat.Models, cat.DefaultModel, "", ""
		if err := p.Seal(); err != nil {
			t.Fatal(err)
		}
		out, err := p.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("policies/vendors.json", append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return // the embedded copy is the old one until the next build
	}
	p, err := datasets.Policy(datasets.CatalogPolicy("vendors"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(cat.Models, p.Models); d != "" {
		t.Errorf("policy vendors models differ from catalog vendors (-catalog +policy); run with -update:\n%s", d)
	}
	names := map[string]bool{}
	for _, m := range cat.Models {
		names[m.Name] = true
	}
	for _, r := range p.Rules {
		if !names[r.Model] {
			t.Errorf("rule %s routes to %s, which the catalog lacks", r.Name, r.Model)
		}
	}
}

// TestVendorsCatalogSources: every vendor model says where its price,
// reference limit and sizes come from, and how the vendor prices it.
func TestVendorsCatalogSources(t *testing.T) {
	cat, err := datasets.NamedCatalog("vendors")
	if err != nil {
		t.Fatal(err)
	}
	families := map[string]int{}
	for _, m := range cat.Models {
		for _, f := range []string{"gpt-image", "gemini", "imagen", "ideogram", "seedream", "flux"} {
			if strings.HasPrefix(m.Name, f) {
				families[f]++
			}
		}
		if m.PriceSource == "" || m.PriceFormula == "" || m.RefsSource == "" || m.LatencySource == "" || m.Endpoint == "" {
			t.Errorf("model %s: price_source, price_formula, refs_source, latency_source and endpoint are required", m.Name)
		}
		if len(m.NativeSizes) == 0 && m.SizeRule == "" {
			t.Errorf("model %s: neither native_sizes nor a size_rule", m.Name)
		}
		if m.SimulateAs == "" {
			t.Errorf("model %s: no simulate_as: the simulated world would give it a flat 0.5 success", m.Name)
		}
	}
	want := map[string]int{"gpt-image": 4, "gemini": 3, "imagen": 3, "ideogram": 3, "seedream": 1, "flux": 1}
	if d := cmp.Diff(want, families); d != "" {
		t.Errorf("models per family (-want +got):\n%s", d)
	}
}
