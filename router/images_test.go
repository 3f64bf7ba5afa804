package router_test

import (
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

// TestDecideImageCount: a request for more images than a model makes in
// one request (catalog max_images: Imagen 4, Ideogram 8, FLUX and Seedream
// 1) is never routed to it, pinned or not; the others stay eligible.
func TestDecideImageCount(t *testing.T) {
	p, err := datasets.Policy("vendors")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := datasets.NamedCatalog("vendors")
	if err != nil {
		t.Fatal(err)
	}
	limited := 0
	for _, m := range cat.Models {
		if m.MaxImages > 0 {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("the vendors catalog names no max_images: nothing to test")
	}
	for _, tt := range []struct {
		n   int
		pin string
	}{{0, ""}, {1, ""}, {2, ""}, {5, ""}, {9, ""}, {5, "imagen-4.0-generate-001"}, {2, "flux-2-pro"}} {
		req := router.Request{ID: "r1", Mode: router.ModeGenerate, Prompt: "a red apple", Width: 1024, Height: 1024, Tier: router.TierStandard, N: tt.n, Pin: tt.pin}
		d := router.Decide(req, p, nil)
		if m, ok := cat.Model(d.Model); !ok || (m.MaxImages > 0 && tt.n > m.MaxImages) {
			t.Errorf("n=%d pin %q routed to %q (max_images %d)", tt.n, tt.pin, d.Model, m.MaxImages)
		}
		for _, c := range d.Candidates {
			m, _ := cat.Model(c.Model)
			over := m.MaxImages > 0 && tt.n > m.MaxImages
			if over && (c.Eligible || c.Reason != router.ReasonImages) {
				t.Errorf("n=%d: candidate %s (max_images %d) eligible %v reason %q, want ineligible for %q", tt.n, c.Model, m.MaxImages, c.Eligible, c.Reason, router.ReasonImages)
			}
			if !over && c.Reason == router.ReasonImages {
				t.Errorf("n=%d: candidate %s (max_images %d) left out for %q", tt.n, c.Model, m.MaxImages, c.Reason)
			}
		}
	}
}
