package server_test

import (
	"encoding/json"
	"testing"

	"github.com/routelab/routelab/server"
)

// TestModelsListPrices: GET /v1/models gives each catalog model's price
// table and says which are served by the simulator.
func TestModelsListPrices(t *testing.T) {
	e := mustStart(t, func(s *setup) {
		s.deps.Catalog = []server.Model{
			{Name: "fast", Provider: "fakeco", CostUSD: map[string]map[string]float64{"1024x1024": {"draft": 0.01, "standard": 0.02, "premium": 0.03}}},
			{Name: "strong", Provider: "gemini", Simulated: true, CostUSD: map[string]map[string]float64{"1024x1024": {"standard": 0.039}}},
		}
	})
	m := do(t, "GET", e.url+"/v1/models", map[string]string{"Authorization": "Bearer " + e.key}, nil)
	var models struct {
		Data []struct {
			ID        string                        `json:"id"`
			CostUSD   map[string]map[string]float64 `json:"cost_usd"`
			Simulated bool                          `json:"simulated"`
		} `json:"data"`
	}
	if err := json.Unmarshal(m.body, &models); err != nil || m.status != 200 || len(models.Data) != 3 {
		t.Fatalf("models = %d %s (%v)", m.status, m.body, err)
	}
	fast, strong := models.Data[1], models.Data[2]
	if fast.ID != "fast" || fast.CostUSD["1024x1024"]["premium"] != 0.03 || fast.Simulated {
		t.Errorf("fast = %+v, want its prices and not simulated", fast)
	}
	if strong.ID != "strong" || strong.CostUSD["1024x1024"]["standard"] != 0.039 || !strong.Simulated {
		t.Errorf("strong = %+v, want its price and simulated", strong)
	}
}
