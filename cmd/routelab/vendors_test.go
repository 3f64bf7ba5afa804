package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"net/http"
	"strings"
	"testing"
)

// TestDevVendorsCatalog is what a new user without vendor keys meets with
// `routelab dev --catalog vendors`: the real models listed with prices
// (auto's from the live vendors policy), and a 3:2 request to a Gemini
// image model served by the simulated world at Gemini's native size,
// delivered at the size asked for and marked simulated.
func TestDevVendorsCatalog(t *testing.T) {
	t.Parallel()
	info, _ := startDevForTest(t, t.TempDir(), "--catalog", "vendors")
	do := func(method, path, body string) (*http.Response, []byte) {
		t.Helper()
		return callAPI(t, method, info.API+path, info.APIKey, body)
	}
	_, body := do("GET", "/v1/models", "")
	var models struct {
		Data []struct {
			ID        string                        `json:"id"`
			CostUSD   map[string]map[string]float64 `json:"cost_usd"`
			Simulated bool                          `json:"simulated"`
			Price     *struct {
				PolicyVersion string  `json:"policy_version"`
				MinUSD        float64 `json:"min_usd"`
				MaxUSD        float64 `json:"max_usd"`
			} `json:"price"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &models); err != nil || len(models.Data) != 16 {
		t.Fatalf("GET /v1/models: %v, %d entries, want auto and 15 vendor models: %.300s", err, len(models.Data), body)
	}
	if p := models.Data[0].Price; p == nil || !strings.HasPrefix(p.PolicyVersion, "vendors-") || p.MinUSD != 0.005 || p.MaxUSD != 0.25 {
		t.Errorf("auto price = %+v, want the vendors policy's range $0.005-$0.25", p)
	}
	for _, m := range models.Data[1:] {
		if !m.Simulated || len(m.CostUSD) == 0 {
			t.Errorf("model %s: simulated %v, %d priced sizes; want simulated and priced", m.ID, m.Simulated, len(m.CostUSD))
		}
	}
	resp, body := do("POST", "/v1/images", `{"prompt":"a wide mountain landscape at dawn","model":"gemini-2.5-flash-image","size":"1536x1024"}`)
	var got struct {
		Simulated bool    `json:"simulated"`
		CostUSD   float64 `json:"cost_usd"`
		Images    []struct {
			B64 string `json:"b64_json"`
		} `json:"images"`
	}
	if err := json.Unmarshal(body, &got); resp.StatusCode != 200 || err != nil || len(got.Images) != 1 {
		t.Fatalf("POST /v1/images = %d %v: %.300s", resp.StatusCode, err, body)
	}
	raw, _ := base64.StdEncoding.DecodeString(got.Images[0].B64)
	cfg, err := png.DecodeConfig(bytes.NewReader(raw))
	if err != nil || cfg.Width != 1536 || cfg.Height != 1024 {
		t.Errorf("image %dx%d (%v), want 1536x1024", cfg.Width, cfg.Height, err)
	}
	if !got.Simulated || resp.Header.Get("x-routelab-simulated") != "true" {
		t.Errorf("simulated %v, header %q; want both true", got.Simulated, resp.Header.Get("x-routelab-simulated"))
	}
}
