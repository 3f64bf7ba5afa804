package router_test

import (
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

// TestDecideTransparent: a request for a transparent background is routed
// only to a model that can make one; the others are ineligible for reason
// background.
func TestDecideTransparent(t *testing.T) {
	p, err := datasets.Policy("vendors")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := datasets.NamedCatalog("vendors")
	if err != nil {
		t.Fatal(err)
	}
	req := router.Request{ID: "r1", Mode: router.ModeGenerate, Prompt: "a round sticker of a fox", Width: 1024, Height: 1024, Tier: router.TierStandard}
	if d := router.Decide(req, p, nil); d.Model != cat.DefaultModel {
		t.Fatalf("opaque request routed to %s, want the default %s", d.Model, cat.DefaultModel)
	}
	req.Transparent = true
	d := router.Decide(req, p, nil)
	if m, ok := cat.Model(d.Model); !ok || !m.TransparentBackground {
		t.Fatalf("transparent request routed to %q, want a model with transparent_background", d.Model)
	}
	for _, c := range d.Candidates {
		m, _ := cat.Model(c.Model)
		if !m.TransparentBackground && (c.Eligible || c.Reason != router.ReasonBackground) {
			t.Errorf("candidate %s: eligible %v reason %q, want ineligible for %q", c.Model, c.Eligible, c.Reason, router.ReasonBackground)
		}
	}
}
