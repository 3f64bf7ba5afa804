package registry_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/registry"
	"github.com/routelab/routelab/providers/resilience"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

func catalog(t *testing.T) router.Catalog {
	t.Helper()
	cat := datasets.MustCatalog()
	base := cat.Models[0]
	vendor := func(name, provider string) router.Model {
		m := base
		m.Name, m.Provider, m.Simulated = name, provider, false
		return m
	}
	cat.Models = append(cat.Models, vendor("gpt-image-1", "openai"), vendor("imagen-4", "gemini"), vendor("ideogram-v3", "ideogram"))
	return cat
}

func TestBuildDefaultsToSim(t *testing.T) {
	cat := catalog(t)
	reg, err := registry.Build(cat, registry.Config{Vendors: registry.VendorsFromEnv(func(string) string { return "" })})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cat.Models {
		_, served := reg.Providers[m.Name]
		if served != m.Simulated {
			t.Errorf("model %s (simulated %v): served %v", m.Name, m.Simulated, served)
		}
	}
	if len(reg.Missing) != 3 {
		t.Errorf("Missing = %v, want the three vendor models without keys", reg.Missing)
	}
	res, err := reg.Providers[cat.Models[0].Name].Generate(context.Background(),
		providers.Request{RequestID: "r1", Model: cat.Models[0].Name, Mode: "generate", Prompt: "a fox", Width: 64, Height: 64})
	if err != nil && !providers.IsRetryable(err) {
		t.Fatalf("sim model Generate: %v", err)
	}
	if err == nil && len(res.Images) != 1 {
		t.Fatalf("sim model returned %d images", len(res.Images))
	}
}

func TestBuildSimulateMissing(t *testing.T) {
	cat := catalog(t)
	reg, err := registry.Build(cat, registry.Config{SimulateMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Providers) != len(cat.Models) || len(reg.Simulated) != 3 || reg.Providers["gpt-image-1"].Name() != "sim" {
		t.Errorf("SimulateMissing: %d providers, simulated %v", len(reg.Providers), reg.Simulated)
	}
}

func TestBuildVendorWithKey(t *testing.T) {
	png := sim.Render("x", 8, 8, 1, 1)
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 { // the first attempt fails; the retrier tries again
			w.WriteHeader(503)
			io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}`)
			return
		}
		io.WriteString(w, `{"created":1,"data":[{"b64_json":"`+base64.StdEncoding.EncodeToString(png)+`"}]}`)
	}))
	defer srv.Close()
	cat := catalog(t)
	reg, err := registry.Build(cat, registry.Config{
		Vendors:  registry.Vendors{"openai": {APIKey: "sk-test", BaseURL: srv.URL + "/v1"}},
		Upstream: map[string]string{"gpt-image-1": "gpt-image-1"},
		Env:      resilience.Env{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := reg.Providers["gpt-image-1"]
	if p == nil || p.Name() != "openai" {
		t.Fatalf("gpt-image-1 provider = %v", p)
	}
	res, err := p.Generate(context.Background(), providers.Request{Model: "gpt-image-1", Prompt: "x", Width: 1024, Height: 1024, Quality: "standard"})
	if err != nil || len(res.Images) != 1 || calls != 2 {
		t.Fatalf("Generate = %v, %v after %d calls; want one image after a retry", res, err, calls)
	}
	want := cat.Models[0].CostUSD["1024x1024"][router.TierStandard]
	if res.CostUSD != want {
		t.Errorf("cost %v, want the catalog price %v", res.CostUSD, want)
	}
	if !reg.Breakers.Usable("openai", "gpt-image-1") {
		t.Error("breaker not usable after a success")
	}
}

func TestBuildUnknownProvider(t *testing.T) {
	cat := datasets.MustCatalog()
	cat.Models = cat.Models[:1]
	cat.Models[0].Provider, cat.Models[0].Simulated = "midjourney", false
	_, err := registry.Build(cat, registry.Config{})
	if err == nil {
		t.Fatal("Build with only an unknown provider succeeded")
	}
	var pe *providers.Error
	if errors.As(err, &pe) {
		t.Fatalf("Build error is a provider error: %v", err)
	}
}

func TestPrice(t *testing.T) {
	m := datasets.MustCatalog().Models[0]
	p := registry.Price(m)
	if got, want := p(1536, 1024, "premium"), m.CostUSD["1536x1024"][router.TierPremium]; got != want {
		t.Errorf("listed size: %v, want %v", got, want)
	}
	if got, want := p(512, 512, "draft"), m.CostUSD["1024x1024"][router.TierDraft]/4; got != want {
		t.Errorf("unlisted size: %v, want %v (per pixel)", got, want)
	}
}
