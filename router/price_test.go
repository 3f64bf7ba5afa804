package router_test

import (
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

func TestRoutePrice(t *testing.T) {
	rules, err := datasets.Policy("rules")
	if err != nil {
		t.Fatal(err)
	}
	// The rules policy's cheapest image is sim-lite's draft 1024x1024
	// ($0.002), its dearest sim-premium's premium 3:2 ($0.25).
	rp := rules.RoutePrice()
	if rp.MinUSD != 0.002 || rp.MaxUSD != 0.25 || rp.ExpectedUSD != nil {
		t.Errorf("rules RoutePrice() = %+v, want 0.002..0.25 and no expected cost", rp)
	}
	trained, err := datasets.Policy("default")
	if err != nil {
		t.Fatal(err)
	}
	rp = trained.RoutePrice()
	for _, tier := range []router.Tier{router.TierDraft, router.TierStandard, router.TierPremium} {
		c, ok := rp.ExpectedUSD[tier]
		if !ok || c < rp.MinUSD || c > rp.MaxUSD {
			t.Errorf("default RoutePrice().ExpectedUSD[%s] = %v (%v), want within %v..%v", tier, c, ok, rp.MinUSD, rp.MaxUSD)
		}
	}
	// default.report.txt: the draft tier's chosen threshold expects $0.0314.
	if c := rp.ExpectedUSD[router.TierDraft]; c < 0.0313 || c > 0.0315 {
		t.Errorf("default expected draft cost = %v, want 0.0314 (default.report.txt)", c)
	}
}
