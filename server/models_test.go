package server_test

import (
	"encoding/json"
	"strconv"
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
		s.deps.AutoPrice = func() *server.AutoPrice {
			return &server.AutoPrice{PolicyVersion: "p1", Basis: "range", MinUSD: 0.01, MaxUSD: 0.039}
		}
	})
	m := do(t, "GET", e.url+"/v1/models", map[string]string{"Authorization": "Bearer " + e.key}, nil)
	var models struct {
		Data []struct {
			ID        string                        `json:"id"`
			CostUSD   map[string]map[string]float64 `json:"cost_usd"`
			Simulated bool                          `json:"simulated"`
			Price     *server.AutoPrice             `json:"price"`
		} `json:"data"`
	}
	if err := json.Unmarshal(m.body, &models); err != nil || m.status != 200 || len(models.Data) != 3 {
		t.Fatalf("models = %d %s (%v)", m.status, m.body, err)
	}
	if auto := models.Data[0]; auto.ID != "auto" || auto.Price == nil || auto.Price.MaxUSD != 0.039 || auto.Price.PolicyVersion != "p1" {
		t.Errorf("auto = %+v, want the live policy's price", auto)
	}
	fast, strong := models.Data[1], models.Data[2]
	if fast.ID != "fast" || fast.CostUSD["1024x1024"]["premium"] != 0.03 || fast.Simulated {
		t.Errorf("fast = %+v, want its prices and not simulated", fast)
	}
	if strong.ID != "strong" || strong.CostUSD["1024x1024"]["standard"] != 0.039 || !strong.Simulated {
		t.Errorf("strong = %+v, want its price and simulated", strong)
	}
}

// TestResponseSaysSimulated: an image made by the simulator says so, in
// the native body and in a header on every image route; one from a real
// provider says false.
func TestResponseSaysSimulated(t *testing.T) {
	e := mustStart(t, func(s *setup) {
		s.deps.Catalog = []server.Model{{Name: "fast", Provider: "gemini", Simulated: true}, {Name: "strong", Provider: "bigco"}}
	})
	tests := []struct {
		path, model string
		want        string
	}{
		{"/v1/images", "fast", "true"},
		{"/v1/images/generations", "fast", "true"},
		{"/v1/images", "strong", "false"},
	}
	for _, tt := range tests {
		r := e.post(t, tt.path, `{"prompt":"a fox","model":"`+tt.model+`"}`)
		if r.status != 200 || r.header.Get("x-routelab-simulated") != tt.want {
			t.Errorf("POST %s model %s = %d, x-routelab-simulated %q, want %s", tt.path, tt.model, r.status, r.header.Get("x-routelab-simulated"), tt.want)
		}
		if tt.path != "/v1/images" {
			continue
		}
		var body struct {
			Simulated *bool `json:"simulated"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || body.Simulated == nil || strconv.FormatBool(*body.Simulated) != tt.want {
			t.Errorf("POST %s model %s: simulated = %v (%v), want %s", tt.path, tt.model, body.Simulated, err, tt.want)
		}
	}
}
