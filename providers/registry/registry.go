// Package registry builds the providers a serve process calls, one per
// catalog model, from the catalog's model -> provider mapping: simulated
// models (and, when asked, vendor models without credentials) are acted out
// by the simulated world; openai, gemini (and imagen), ideogram, byteplus
// (Seedream) and bfl (FLUX) models get their vendor adapter. Every provider is wrapped with the shared retrier and its
// own circuit breaker, whose set is the router's Health.
package registry

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/bfl"
	"github.com/routelab/routelab/providers/gemini"
	"github.com/routelab/routelab/providers/ideogram"
	"github.com/routelab/routelab/providers/openai"
	"github.com/routelab/routelab/providers/resilience"
	"github.com/routelab/routelab/providers/seedream"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// Vendor credentials and endpoints.
type Vendor struct {
	APIKey  string
	BaseURL string // "" for the vendor's public endpoint
}

// Vendors holds every vendor's settings by provider name.
type Vendors map[string]Vendor

// KeyEnv is the environment variable holding each vendor provider's API
// key (and, with _KEY swapped for _BASE_URL, its endpoint). Imagen is
// reached with the Gemini API key; ARK is BytePlus ModelArk (Seedream);
// BFL is Black Forest Labs (FLUX).
var KeyEnv = map[string]string{
	"openai":   "OPENAI_API_KEY",
	"gemini":   "GEMINI_API_KEY",
	"imagen":   "GEMINI_API_KEY",
	"ideogram": "IDEOGRAM_API_KEY",
	"byteplus": "ARK_API_KEY",
	"bfl":      "BFL_API_KEY",
}

// VendorsFromEnv reads every vendor's key and base URL (KeyEnv) through
// getenv.
func VendorsFromEnv(getenv func(string) string) Vendors {
	v := Vendors{}
	for provider, key := range KeyEnv {
		v[provider] = Vendor{APIKey: getenv(key), BaseURL: getenv(strings.TrimSuffix(key, "_API_KEY") + "_BASE_URL")}
	}
	return v
}

// Config says how to build the providers.
type Config struct {
	Vendors Vendors
	// Upstream maps a catalog model to the vendor's model name when they
	// differ (default: the catalog name).
	Upstream map[string]string
	// SimulateMissing serves vendor models that have no API key with the
	// simulated world instead of leaving them out (offline development).
	SimulateMissing bool
	// World is the simulated world; nil builds one from the catalog with WorldSeed.
	World     *sim.World
	WorldSeed uint64
	// Caller, when set, answers the simulated calls instead of World: a
	// wrapper that changes the world (a lab scenario) or records its draws.
	Caller sim.Caller
	Sim    sim.Options // the simulated provider's options (latency scale, cache)
	// HTTPClient is used by the vendor adapters; nil is upstream.Client()
	// (a keep-alive pool sized for concurrent calls).
	HTTPClient *http.Client
	Retry      resilience.RetryPolicy
	Breaker    resilience.BreakerConfig
	Env        resilience.Env // clock, sleep and jitter source
	// OnBreakerChange is called on every breaker state change (logs, metrics).
	OnBreakerChange func(name string, from, to resilience.State)
}

// Registry is the built set.
type Registry struct {
	// Providers by catalog model name, each behind its breaker and the retrier.
	Providers map[string]providers.Provider
	// Breakers is the router's Health (router.Health) and the breaker snapshot.
	Breakers *resilience.Breakers
	// Simulated lists the vendor models served by the simulator for want of a key.
	Simulated []string
	// Missing lists models left out, with the reason.
	Missing map[string]string
}

// Build makes one provider per catalog model.
func Build(cat router.Catalog, cfg Config) (*Registry, error) {
	world := cfg.World
	if world == nil {
		world = sim.NewWorld(cat, cfg.WorldSeed)
	}
	var caller sim.Caller = world
	if cfg.Caller != nil {
		caller = cfg.Caller
	}
	simulator := sim.New(sim.WorldOracle(caller), cfg.Sim)
	reg := &Registry{
		Providers: map[string]providers.Provider{},
		Breakers:  resilience.NewBreakers(cfg.Breaker, cfg.Env.Now, cfg.OnBreakerChange),
		Missing:   map[string]string{},
	}
	retrier := resilience.NewRetrier(cfg.Retry, cfg.Env)
	for _, m := range cat.Models {
		p, err := build(m, cfg, simulator)
		switch {
		case err == errNoKey && cfg.SimulateMissing:
			p = simulator
			reg.Simulated = append(reg.Simulated, m.Name)
		case err != nil:
			reg.Missing[m.Name] = err.Error()
			continue
		}
		reg.Providers[m.Name] = resilience.Wrap(nativeSized(p, m), reg.Breakers.For(m.Name), retrier)
	}
	sort.Strings(reg.Simulated)
	if len(reg.Providers) == 0 {
		return nil, fmt.Errorf("no model of catalog %s can be served: %v", cat.Version, reg.Missing)
	}
	return reg, nil
}

var errNoKey = fmt.Errorf("no API key")

func build(m router.Model, cfg Config, simulator *sim.Provider) (providers.Provider, error) {
	if m.Simulated || m.Provider == "sim" {
		return simulator, nil
	}
	v, ok := cfg.Vendors[m.Provider]
	if !ok && !knownVendor(m.Provider) {
		return nil, fmt.Errorf("unknown provider %q", m.Provider)
	}
	if v.APIKey == "" {
		return nil, errNoKey
	}
	upstreamModel := m.Name
	if u, ok := cfg.Upstream[m.Name]; ok {
		upstreamModel = u
	}
	price := Price(m)
	switch m.Provider {
	case "byteplus":
		return seedream.New(seedream.Config{APIKey: v.APIKey, BaseURL: v.BaseURL, Model: upstreamModel, HTTPClient: cfg.HTTPClient, Price: price}), nil
	case "openai":
		return openai.New(openai.Config{APIKey: v.APIKey, BaseURL: v.BaseURL, Model: upstreamModel, HTTPClient: cfg.HTTPClient, Price: price,
			TokenPrices: tokenPrices(m)}), nil
	case "bfl":
		return bfl.New(bfl.Config{APIKey: v.APIKey, BaseURL: v.BaseURL, Model: upstreamModel, HTTPClient: cfg.HTTPClient, Price: price}), nil
	case "gemini", "imagen": // the Gemini API serves both; the adapter calls :predict for imagen-* models
		return gemini.New(gemini.Config{APIKey: v.APIKey, BaseURL: v.BaseURL, Model: upstreamModel, HTTPClient: cfg.HTTPClient, Price: price}), nil
	default: // ideogram
		return ideogram.New(ideogram.Config{APIKey: v.APIKey, BaseURL: v.BaseURL, HTTPClient: cfg.HTTPClient, Price: price,
			RenderingSpeed: ideogramSpeed(upstreamModel)}), nil
	}
}

// ideogramSpeed is the rendering speed a catalog model name fixes
// ("ideogram-v3-turbo" is TURBO whatever the request's tier), or "" for a
// name without one (the tier picks it).
func ideogramSpeed(model string) string {
	for _, s := range []string{"turbo", "default", "quality"} {
		if strings.HasSuffix(model, "-"+s) {
			return strings.ToUpper(s)
		}
	}
	return ""
}

// tokenPrices are m's token prices, nil when the catalog gives none.
func tokenPrices(m router.Model) *providers.TokenPrices {
	t := m.TokenUSDPer1M
	if len(t) == 0 {
		return nil
	}
	return &providers.TokenPrices{TextInput: t["text_input"], ImageInput: t["image_input"], ImageOutput: t["image_output"], TextOutput: t["text_output"]}
}

func knownVendor(p string) bool {
	switch p {
	case "openai", "gemini", "imagen", "ideogram", "byteplus", "bfl":
		return true
	}
	return false
}

// nativeSized is p asked for m's native size: a model with native sizes
// gets the one nearest the requested aspect (OpenAI's gpt-image-1 refuses
// 1536x864 and makes 1536x1024; the simulator renders what the vendor
// would), so QA and the server's resizing meet what the model returns. A
// price from the catalog stays the catalog's for the size asked for; one
// from the vendor's usage is the bill.
func nativeSized(p providers.Provider, m router.Model) providers.Provider {
	if len(m.NativeSizes) == 0 {
		return p
	}
	return native{Provider: p, m: m, price: Price(m)}
}

type native struct {
	providers.Provider
	m     router.Model
	price func(w, h int, tier string) float64
}

func (n native) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	w, h := req.Width, req.Height
	if w <= 0 || h <= 0 {
		w, h = 1024, 1024
	}
	nreq := req
	nreq.Width, nreq.Height = n.m.NativeSize(w, h)
	res, err := n.Provider.Generate(ctx, nreq)
	if err != nil || res.CostSource == providers.CostUsage || res.CostUSD <= 0 {
		return res, err
	}
	if at := n.price(nreq.Width, nreq.Height, req.Quality); at > 0 {
		res.CostUSD *= n.price(w, h, req.Quality) / at // the catalog's per-call count of images kept
	}
	return res, nil
}

// Price returns the catalog price of one image of m: the listed price for
// the size and tier, else the 1024x1024 price scaled by pixels (the same rule
// as the simulated world).
func Price(m router.Model) func(w, h int, tier string) float64 {
	return func(w, h int, tier string) float64 {
		if w <= 0 || h <= 0 {
			w, h = 1024, 1024
		}
		t := router.Tier(tier)
		if t == "" {
			t = router.TierStandard
		}
		if byTier, ok := m.CostUSD[fmt.Sprintf("%dx%d", w, h)]; ok {
			if c, ok := byTier[t]; ok {
				return c
			}
		}
		return m.CostUSD["1024x1024"][t] * float64(w*h) / (1024 * 1024)
	}
}
