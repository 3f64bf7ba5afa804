package router_test

import (
	"strings"
	"testing"

	"github.com/routelab/routelab/router"
)

func TestNativeSize(t *testing.T) {
	gemini := router.Model{NativeSizes: []string{"1024x1024", "832x1248", "1248x832", "864x1184", "1184x864", "768x1344", "1344x768"}}
	tests := []struct {
		name         string
		m            router.Model
		w, h         int
		wantW, wantH int
	}{
		{"3:2 to its native 3:2", gemini, 1536, 1024, 1248, 832},
		{"2:3 to its native 2:3", gemini, 1024, 1536, 832, 1248},
		{"square", gemini, 2048, 2048, 1024, 1024},
		{"16:9", gemini, 1920, 1080, 1344, 768},
		{"an aspect it lacks goes to the nearest (2:1 to 16:9)", gemini, 2000, 1000, 1344, 768},
		{"no native sizes: as asked", router.Model{}, 1536, 1024, 1536, 1024},
		{"no size asked", gemini, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w, h := tt.m.NativeSize(tt.w, tt.h); w != tt.wantW || h != tt.wantH {
				t.Errorf("NativeSize(%d, %d) = %dx%d, want %dx%d", tt.w, tt.h, w, h, tt.wantW, tt.wantH)
			}
		})
	}
}

func TestNativeSizesNeedASource(t *testing.T) {
	m := router.Model{Name: "g", Provider: "gemini", Modes: []router.Mode{router.ModeGenerate}, Sizes: []string{"1024x1024"},
		CostUSD:      map[string]map[router.Tier]float64{"1024x1024": {router.TierDraft: 0.039, router.TierStandard: 0.039, router.TierPremium: 0.039}},
		LatencyP50MS: 4000, NativeSizes: []string{"1248x832"}, PriceSource: "https://example.invalid/pricing"}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "native_sizes_source") {
		t.Errorf("Validate without a source = %v, want an error naming native_sizes_source", err)
	}
	m.NativeSizesSource = "https://example.invalid/docs"
	if err := m.Validate(); err != nil {
		t.Errorf("Validate with a source = %v", err)
	}
	m.NativeSizes = []string{"1248by832"}
	if err := m.Validate(); err == nil {
		t.Error("Validate accepted native size 1248by832")
	}
}

// A vendor model's price is never $0: a price left out would make the
// router prefer the model and every spend figure wrong. The simulated
// world's models may be free. (A source is asked of the shipped catalog by
// its own test, not of every operator's catalog file.)
func TestVendorPriceRequired(t *testing.T) {
	model := func(provider string, usd float64, source string) router.Model {
		return router.Model{Name: "m", Provider: provider, Modes: []router.Mode{router.ModeGenerate}, Sizes: []string{"1024x1024"},
			CostUSD:      map[string]map[router.Tier]float64{"1024x1024": {router.TierDraft: usd, router.TierStandard: usd, router.TierPremium: usd}},
			LatencyP50MS: 4000, PriceSource: source}
	}
	tests := []struct {
		name    string
		m       router.Model
		wantErr string
	}{
		{"priced and sourced", model("openai", 0.04, "https://openai.com/api/pricing"), ""},
		{"zero price", model("openai", 0, "https://openai.com/api/pricing"), "is $0"},
		{"priced, no source", model("gemini", 0.039, ""), ""},
		{"simulated and free", model("sim", 0, ""), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
