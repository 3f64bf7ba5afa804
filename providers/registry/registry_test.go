package registry_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	_ "image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
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

// TestSimulatedAtNativeSize: a vendor model simulated for want of a key
// answers at its native size for the requested aspect, as the vendor
// would (Gemini 2.5 Flash Image: 1248x832 for 3:2), billed at the
// catalog's price for the size asked for; with ARK_API_KEY, Seedream is
// served by its adapter instead.
func TestSimulatedAtNativeSize(t *testing.T) {
	cat, err := datasets.NamedCatalog("vendors")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Build(cat, registry.Config{
		Vendors: registry.VendorsFromEnv(func(string) string { return "" }), SimulateMissing: true,
		Breaker: resilience.BreakerConfig{}, Retry: resilience.RetryPolicy{MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Simulated) != len(cat.Models) {
		t.Fatalf("Simulated = %v, want all %d vendor models", reg.Simulated, len(cat.Models))
	}
	tests := []struct {
		model        string
		w, h         int
		wantW, wantH int
		wantUSD      float64
	}{
		{"gemini-2.5-flash-image", 1536, 1024, 1248, 832, 0.039},
		{"imagen-4.0-fast-generate-001", 1536, 1024, 1280, 896, 0.02}, // Imagen has no 3:2: 4:3
		{"gpt-image-1", 1536, 864, 1536, 1024, 0.063},                 // 16:9 answered at 3:2, priced so
		{"gpt-image-2", 1536, 864, 1536, 864, 0.047},                  // any size: answered as asked
	}
	for _, tt := range tests {
		var res providers.Result
		for attempt := 0; ; attempt++ { // the world draws errors; a later attempt is a fresh draw
			res, err = reg.Providers[tt.model].Generate(context.Background(), providers.Request{
				RequestID: "r-" + tt.model, Model: tt.model, Mode: "generate", Prompt: "a wide valley", Width: tt.w, Height: tt.h,
				Quality: "standard", Attempt: attempt})
			if err == nil || attempt == 20 {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.model, err)
		}
		cfg, err := decodeConfig(res.Images[0].Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Width != tt.wantW || cfg.Height != tt.wantH || math.Abs(res.CostUSD-tt.wantUSD) > 1e-12 {
			t.Errorf("%s at %dx%d = %dx%d for $%v, want %dx%d for $%v", tt.model, tt.w, tt.h, cfg.Width, cfg.Height, res.CostUSD, tt.wantW, tt.wantH, tt.wantUSD)
		}
	}

	keyed, err := registry.Build(cat, registry.Config{Vendors: registry.VendorsFromEnv(func(k string) string {
		if k == "ARK_API_KEY" {
			return "ark-key"
		}
		return ""
	}), SimulateMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := keyed.Providers["seedream-4-5-251128"]; p == nil || p.Name() != "byteplus" || slices.Contains(keyed.Simulated, "seedream-4-5-251128") {
		t.Errorf("with ARK_API_KEY, seedream is not served by the byteplus adapter (simulated %v, missing %v)", keyed.Simulated, keyed.Missing)
	}
}

func decodeConfig(b []byte) (image.Config, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	return cfg, err
}

// TestVendorAskedForNativeSize: with a key, the vendor adapter is asked
// for the model's native size too: gpt-image-1 cannot make 1536x864, so a
// 16:9 request goes upstream as 1536x1024 (the server crops it after),
// priced at the catalog's 16:9 price.
func TestVendorAskedForNativeSize(t *testing.T) {
	png := sim.Render("x", 8, 8, 1, 1)
	var size string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Size string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		size = body.Size
		io.WriteString(w, `{"created":1,"data":[{"b64_json":"`+base64.StdEncoding.EncodeToString(png)+`"}]}`)
	}))
	defer srv.Close()
	cat, err := datasets.NamedCatalog("vendors")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Build(cat, registry.Config{Vendors: registry.Vendors{"openai": {APIKey: "sk-test", BaseURL: srv.URL + "/v1"}}, SimulateMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := reg.Providers["gpt-image-1"].Generate(context.Background(),
		providers.Request{Model: "gpt-image-1", Prompt: "x", Width: 1536, Height: 864, Quality: "standard"})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cat.Model("gpt-image-1")
	if want := m.CostUSD["1536x864"][router.TierStandard]; size != "1536x1024" || math.Abs(res.CostUSD-want) > 1e-12 {
		t.Errorf("upstream size %q, cost %v; want 1536x1024 at $%v", size, res.CostUSD, want)
	}
}

// TestVendorKeysServeCatalogModels: with keys, the vendors catalog's
// Imagen models are served by the Gemini adapter (the Gemini API's
// :predict) and each Ideogram 3.0 model sends its own rendering speed,
// whatever the request's tier, with magic_prompt OFF so the prompt's words
// are not rewritten.
func TestVendorKeysServeCatalogModels(t *testing.T) {
	png := sim.Render("x", 8, 8, 1, 1)
	var form map[string][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/img.png" {
			w.Write(png)
			return
		}
		if err := r.ParseMultipartForm(1 << 20); err == nil {
			form = r.MultipartForm.Value
		}
		io.WriteString(w, `{"created":"x","data":[{"url":"http://`+r.Host+`/img.png","is_image_safe":true}]}`)
	}))
	defer srv.Close()
	cat, err := datasets.NamedCatalog("vendors")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Build(cat, registry.Config{Vendors: registry.VendorsFromEnv(func(k string) string {
		return map[string]string{"GEMINI_API_KEY": "g-key", "IDEOGRAM_API_KEY": "i-key", "IDEOGRAM_BASE_URL": srv.URL}[k]
	}), SimulateMissing: true, Retry: resilience.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"imagen-4.0-fast-generate-001", "gemini-3-pro-image-preview"} {
		if p := reg.Providers[m]; p == nil || p.Name() != "gemini" {
			t.Errorf("%s not served by the gemini adapter (missing: %q)", m, reg.Missing[m])
		}
	}
	if _, err := reg.Providers["ideogram-v3-quality"].Generate(context.Background(),
		providers.Request{Model: "ideogram-v3-quality", Prompt: `a sign that says "OPEN"`, Width: 1024, Height: 1024, Quality: "draft"}); err != nil {
		t.Fatal(err)
	}
	if got := form["rendering_speed"]; len(got) != 1 || got[0] != "QUALITY" || len(form["magic_prompt"]) != 1 || form["magic_prompt"][0] != "OFF" {
		t.Errorf("ideogram form %v, want rendering_speed QUALITY and magic_prompt OFF", form)
	}
}
