package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/registry"
	"github.com/routelab/routelab/providers/resilience"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server"
)

// Vendor contract tests: the shipped vendors catalog and policy, the
// registry's real adapters (behind the retrier and the breakers) pointed
// at vendorFake, real QA, the gateway and the server on a 127.0.0.1
// listener, events recorded: every request goes the whole serving path as
// it would against the vendors.

// contract is one serving stack against a fresh vendorFake.
type contract struct {
	*env
	fake   *vendorFake
	cat    router.Catalog
	sleeps *sleeps
}

// sleeps records the retrier's waits and returns at once: a 429's
// Retry-After is honoured (the wait asked for is what is checked) without
// the test waiting it out.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

// mark is how many waits there have been; longest(mark) is the longest
// since.
func (s *sleeps) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.d)
}

func (s *sleeps) longest(since int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Max(append([]time.Duration{0}, s.d[since:]...))
}

// dallE3 is OpenAI's dall-e-3, added to the catalog and policy of the n=2
// case: one image a call (n=1), 1024x1024 $0.04, hd $0.08
// (https://platform.openai.com/docs/api-reference/images, n: "For
// dall-e-3, only n=1 is supported").
var dallE3 = router.Model{Name: "dall-e-3", Provider: "openai", Modes: []router.Mode{router.ModeGenerate}, Sizes: []string{"1024x1024"},
	CostUSD:      map[string]map[router.Tier]float64{"1024x1024": {router.TierDraft: 0.04, router.TierStandard: 0.04, router.TierPremium: 0.08}},
	LatencyP50MS: 12000, LatencySigma: 0.3,
	PriceSource: "OpenAI's published DALL·E 3 prices (standard 1024x1024 $0.040, HD $0.080); an entry of this test's catalog only"}

// startContract starts the stack; extra models join the vendors catalog
// and policy; requestTimeout, when set, is the server's deadline.
func startContract(t *testing.T, requestTimeout time.Duration, extra ...router.Model) *contract {
	t.Helper()
	cat, err := datasets.NamedCatalog("vendors")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := datasets.Policy("vendors")
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) > 0 {
		cat.Models = append(slices.Clone(cat.Models), extra...)
		pol.Models = append(slices.Clone(pol.Models), extra...)
		pol.Version = ""
		if err := pol.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	c := &contract{fake: newVendorFake(t), cat: cat, sleeps: &sleeps{}}
	base := map[string]string{vOpenAI: "/openai/v1", vGemini: "/gemini/v1beta", vIdeogram: "/ideogram", vArk: "/ark", vBFL: "/bfl"}
	vendors := registry.Vendors{}
	for v, path := range base {
		vendors[v] = registry.Vendor{APIKey: fakeKeys[v], BaseURL: c.fake.URL + path}
	}
	vendors["imagen"] = vendors[vGemini]
	reg, err := registry.Build(cat, registry.Config{Vendors: vendors, Env: resilience.Env{Sleep: c.sleeps.sleep}})
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Simulated) > 0 || len(reg.Missing) > 0 {
		t.Fatalf("every model must be a vendor adapter: simulated %v, missing %v", reg.Simulated, reg.Missing)
	}
	c.env = mustStart(t, func(s *setup) {
		s.cfg.RequestTimeout = requestTimeout
		s.deps.Catalog = nil
		s.gwDeps.ProviderOf = map[string]string{}
		for _, m := range cat.Models {
			prices := map[string]map[string]float64{}
			for size, byTier := range m.CostUSD {
				prices[size] = map[string]float64{}
				for tier, usd := range byTier {
					prices[size][string(tier)] = usd
				}
			}
			s.deps.Catalog = append(s.deps.Catalog, server.Model{Name: m.Name, Provider: m.Provider, Sizes: m.Sizes, CostUSD: prices})
			s.gwDeps.ProviderOf[m.Name] = m.Provider
		}
		s.gwDeps.Policy = gateway.NewLivePolicy(pol, reg.Breakers)
		s.gwDeps.Providers = reg.Providers
		s.gwDeps.QA = gateway.NewQA(qa.New(qa.Thresholds{}))
		s.gwDeps.Sizes = &cat
	})
	return c
}

// served is what the test reads of one request: the response and the
// events it left.
type served struct {
	status   int
	code     string
	resp     nativeResponse
	costUSD  float64
	decision *events.Decision
	qa       []*events.QAResult
	sizes    [][2]int // the delivered images' sizes
}

// generate posts body to /v1/images and waits for the request's decision
// event.
func (c *contract) generate(t *testing.T, body string) served {
	t.Helper()
	r := c.post(t, "/v1/images", body)
	out := served{status: r.status, code: r.errorCode()}
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	ev, ok := c.events.Next(ctx, events.TopicDecisions)
	if !ok {
		t.Fatalf("no decision event for %s (%d %s)", body, r.status, r.body)
	}
	out.decision = ev.Value.(*events.Decision)
	for _, e := range c.events.Events() {
		if q, ok := e.Value.(*events.QAResult); ok && q.RequestID == out.decision.RequestID {
			out.qa = append(out.qa, q)
		}
	}
	if r.status != 200 {
		return out
	}
	out.resp = decodeNative(t, r)
	var cost struct {
		CostUSD float64 `json:"cost_usd"`
	}
	_ = json.Unmarshal(r.body, &cost)
	out.costUSD = cost.CostUSD
	for _, im := range out.resp.Images {
		img := mustPNG(t, im.B64JSON)
		out.sizes = append(out.sizes, [2]int{img.Bounds().Dx(), img.Bounds().Dy()})
	}
	return out
}

// TestVendorContractNativeSizes: a 3:2 request pinned to each vendor's
// model is made at that vendor's native size for 3:2 (or the size asked
// for where the vendor takes any) and passes QA as it is; the cost is the
// vendor's bill where it reports one (GPT image usage, BFL's credits),
// else the catalog's. The Gemini request comes back at the 1536x1024
// asked for (cropped and scaled); the others ask for fit native and come
// back at the vendor's size (the resizing is the same code, and under the
// race detector it costs seconds an image).
func TestVendorContractNativeSizes(t *testing.T) {
	t.Parallel()
	c := startContract(t, 0)
	tests := []struct {
		model, vendor  string
		fit            string
		wantAsked      string // what the vendor was sent: the size or the aspect field
		wantMade       [2]int // what the vendor answered with
		wantCostSource string
	}{
		{"gemini-2.5-flash-image", vGemini, "crop", "3:2", [2]int{1248, 832}, providers.CostCatalog},
		{"gpt-image-1.5", vOpenAI, "native", "1536x1024", [2]int{1536, 1024}, providers.CostUsage},
		{"gpt-image-2", vOpenAI, "native", "1536x1024", [2]int{1536, 1024}, providers.CostUsage},
		{"gemini-3-pro-image-preview", vGemini, "native", "3:2", [2]int{1232, 816}, providers.CostCatalog},
		{"imagen-4.0-generate-001", vGemini, "native", "4:3", [2]int{1280, 896}, providers.CostCatalog}, // Imagen has no 3:2
		{"ideogram-v3-turbo", vIdeogram, "native", "3x2", [2]int{1248, 832}, providers.CostCatalog},
		{"seedream-4-5-251128", vArk, "native", "2496x1664", [2]int{2496, 1664}, providers.CostCatalog}, // 2K at least
		{"flux-2-pro", vBFL, "native", "1536x1024", [2]int{1536, 1024}, providers.CostUsage},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			before := len(c.fake.callsTo(tt.vendor))
			s := c.generate(t, fmt.Sprintf(`{"prompt":"a wide mountain landscape at dawn","model":%q,"size":"1536x1024","fit":%q}`, tt.model, tt.fit))
			if s.status != 200 || s.resp.Model != tt.model || !s.resp.QAPass || s.resp.Escalated || s.resp.Fallback {
				t.Fatalf("%d %s: model %s, qa_pass %v, escalated %v, fallback %v; want %s passing QA at the first attempt",
					s.status, s.code, s.resp.Model, s.resp.QAPass, s.resp.Escalated, s.resp.Fallback, tt.model)
			}
			calls := c.fake.callsTo(tt.vendor)[before:]
			if len(calls) != 1 {
				t.Fatalf("%d calls to %s, want 1", len(calls), tt.vendor)
			}
			if asked := calls[0].Size + calls[0].Aspect; asked != tt.wantAsked || [2]int{calls[0].Width, calls[0].Height} != tt.wantMade {
				t.Errorf("vendor asked for %q and made %dx%d; want %q and %v", asked, calls[0].Width, calls[0].Height, tt.wantAsked, tt.wantMade)
			}
			want := [2]int{1536, 1024}
			if tt.fit == "native" {
				want = tt.wantMade
			}
			if len(s.sizes) != 1 || s.sizes[0] != want {
				t.Errorf("delivered %v, want one %dx%d image", s.sizes, want[0], want[1])
			}
			if len(s.qa) != 1 || !s.qa[0].Pass || s.qa[0].Model != tt.model {
				t.Errorf("QA events %+v, want one pass for %s", s.qa, tt.model)
			}
			d := s.decision
			if d.Status != "ok" || d.Model != tt.model || len(d.Attempts) != 1 || d.Attempts[0].CostSource != tt.wantCostSource || d.Attempts[0].CostUSD <= 0 {
				t.Errorf("decision %s model %s attempts %+v; want ok by %s, cost from %s", d.Status, d.Model, d.Attempts, tt.model, tt.wantCostSource)
			}
			if tt.vendor == vIdeogram && calls[0].MagicPrompt != "OFF" {
				t.Errorf("Ideogram magic_prompt %q, want OFF (AUTO may rewrite the words to render)", calls[0].MagicPrompt)
			}
		})
	}
}

// TestVendorContractUsageShapes: both usage shapes the GPT image models
// answer with are billed from the usage: with output_tokens_details (text
// and image output tokens apart, gpt-image-2) and without (every output
// token an image token).
func TestVendorContractUsageShapes(t *testing.T) {
	t.Parallel()
	c := startContract(t, 0)
	// gpt-image-2's token prices (vendors.json): text in $5, image out $30,
	// text out $10 per 1M; the fake reports 50 text tokens in and 1568
	// image tokens out, plus 200 text tokens out in the detailed shape.
	tests := []struct {
		shape string
		want  float64
	}{
		{"detailed", (50*5 + 1568*30 + 200*10) / 1e6},
		{"plain", (50*5 + 1568*30) / 1e6},
	}
	for _, tt := range tests {
		t.Run(tt.shape, func(t *testing.T) {
			c.fake.on(vOpenAI, act{usage: tt.shape})
			s := c.generate(t, `{"prompt":"a red fox in the snow","model":"gpt-image-2","size":"1024x1024","fit":"native"}`)
			if s.status != 200 || len(s.decision.Attempts) != 1 {
				t.Fatalf("%d %s, attempts %+v", s.status, s.code, s.decision.Attempts)
			}
			a := s.decision.Attempts[0]
			if a.CostSource != providers.CostUsage || math.Abs(a.CostUSD-tt.want) > 1e-9 || math.Abs(s.costUSD-tt.want) > 1e-9 {
				t.Errorf("attempt cost %v from %s, response cost %v; want %v from usage", a.CostUSD, a.CostSource, s.costUSD, tt.want)
			}
		})
	}
}

// TestVendorContractRateLimited: a 429 with Retry-After (Google's
// RetryInfo delay for Gemini) is retried on the same model after the wait
// the vendor asked for, and the request is served by it.
func TestVendorContractRateLimited(t *testing.T) {
	t.Parallel()
	c := startContract(t, 0)
	for _, tt := range []struct{ model, vendor string }{
		{"gpt-image-1", vOpenAI}, {"gemini-2.5-flash-image", vGemini}, {"ideogram-v3-default", vIdeogram},
		{"seedream-4-5-251128", vArk}, {"flux-2-pro", vBFL},
	} {
		t.Run(tt.model, func(t *testing.T) {
			c.fake.on(tt.vendor, act{status: 429, retryAfter: "2"}, act{})
			before, waits := len(c.fake.callsTo(tt.vendor)), c.sleeps.mark()
			s := c.generate(t, fmt.Sprintf(`{"prompt":"a lighthouse at night","model":%q,"size":"1024x1024","fit":"native"}`, tt.model))
			if s.status != 200 || s.resp.Model != tt.model || s.resp.Fallback {
				t.Fatalf("%d %s, model %s, fallback %v; want %s after its retry", s.status, s.code, s.resp.Model, s.resp.Fallback, tt.model)
			}
			if n := len(c.fake.callsTo(tt.vendor)) - before; n != 2 {
				t.Errorf("%d calls to %s, want 2 (the 429, the retry)", n, tt.vendor)
			}
			if w := c.sleeps.longest(waits); w < 2*time.Second {
				t.Errorf("longest retry wait %v, want the 2 s Retry-After", w)
			}
		})
	}
}

// TestVendorContractServerErrors: a vendor answering 5xx to every attempt
// (the retries included) hands the request to another model, which
// serves it; the first model's attempt is recorded as unavailable.
func TestVendorContractServerErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ model, vendor string }{
		{"gpt-image-1", vOpenAI}, {"imagen-4.0-fast-generate-001", vGemini}, {"ideogram-v3-turbo", vIdeogram},
		{"seedream-4-5-251128", vArk}, {"flux-2-pro", vBFL},
	} {
		t.Run(tt.model, func(t *testing.T) {
			c := startContract(t, 0) // fresh breakers
			c.fake.on(tt.vendor, act{status: 503})
			s := c.generate(t, fmt.Sprintf(`{"prompt":"a city street in the rain","model":%q,"size":"1024x1024","fit":"native"}`, tt.model))
			if s.status != 200 || !s.resp.Fallback || s.resp.Model == tt.model || !s.resp.QAPass {
				t.Fatalf("%d %s, model %s, fallback %v; want served by another model after %s failed", s.status, s.code, s.resp.Model, s.resp.Fallback, tt.model)
			}
			a := s.decision.Attempts
			if len(a) < 2 || a[0].Model != tt.model || a[0].Error != string(providers.KindUnavailable) {
				t.Errorf("attempts %+v, want %s unavailable first", a, tt.model)
			}
			if n := len(c.fake.callsTo(tt.vendor)); n < 2 {
				t.Errorf("%d calls to %s, want the retries too", n, tt.vendor)
			}
		})
	}
}

// TestVendorContractTimeout: a vendor that never answers (a hung
// connection; a BFL task that stays Pending) ends the request at its
// deadline with timeout, the attempt recorded as one.
func TestVendorContractTimeout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, model, vendor string
		a                   act
	}{
		{"hung connection", "gpt-image-1", vOpenAI, act{hang: true}},
		{"task pending forever", "flux-2-pro", vBFL, act{pending: math.MaxInt32}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startContract(t, 2*time.Second) // the wait is the test: a hang ends only at the deadline
			c.fake.on(tt.vendor, tt.a)
			s := c.generate(t, fmt.Sprintf(`{"prompt":"a quiet harbour","model":%q,"size":"1024x1024","fit":"native"}`, tt.model))
			if s.status != 504 || s.code != gateway.CodeTimeout {
				t.Fatalf("%d %s, want 504 timeout", s.status, s.code)
			}
			a := s.decision.Attempts
			if s.decision.Status != "error" || len(a) == 0 || a[0].Model != tt.model || a[0].Status != "timeout" {
				t.Errorf("decision %s %s, attempts %+v; want %s timed out", s.decision.Status, s.decision.ErrorCode, a, tt.model)
			}
		})
	}
}

// TestVendorContractContentPolicy: each vendor's own refusal (OpenAI's
// moderation_blocked, Gemini's blocked prompt, Imagen's filtered
// prediction, Ideogram's 422, Seedream's SensitiveContentDetected, a
// moderated BFL task) reaches the caller as content_policy after one
// call: not retried, not sent to another model.
func TestVendorContractContentPolicy(t *testing.T) {
	t.Parallel()
	c := startContract(t, 0)
	for _, tt := range []struct{ model, vendor string }{
		{"gpt-image-1", vOpenAI}, {"gemini-2.5-flash-image", vGemini}, {"imagen-4.0-generate-001", vGemini},
		{"ideogram-v3-quality", vIdeogram}, {"seedream-4-5-251128", vArk}, {"flux-2-pro", vBFL},
	} {
		t.Run(tt.model, func(t *testing.T) {
			c.fake.on(tt.vendor, act{policy: true})
			defer c.fake.on(tt.vendor)
			before := c.fake.callCount()
			s := c.generate(t, fmt.Sprintf(`{"prompt":"something the vendor refuses","model":%q,"size":"1024x1024","fit":"native"}`, tt.model))
			if s.status != 400 || s.code != gateway.CodeContentPolicy {
				t.Fatalf("%d %s, want 400 content_policy", s.status, s.code)
			}
			if n := c.fake.callCount() - before; n != 1 {
				t.Errorf("%d vendor calls, want 1", n)
			}
			a := s.decision.Attempts
			if s.decision.ErrorCode != gateway.CodeContentPolicy || len(a) != 1 || a[0].Error != string(providers.KindContentPolicy) {
				t.Errorf("decision %s, attempts %+v; want one content_policy attempt", s.decision.ErrorCode, a)
			}
		})
	}
}

// TestVendorContractBFLTaskStates: BFL's submit-and-poll: a task Pending
// for two polls then Ready is served, billed from the submit's credits; a
// task ending in Error is retried as an outage.
func TestVendorContractBFLTaskStates(t *testing.T) {
	t.Parallel()
	c := startContract(t, 0)
	t.Run("pending then ready", func(t *testing.T) {
		c.fake.on(vBFL, act{pending: 2})
		s := c.generate(t, `{"prompt":"a glass teapot on a table","model":"flux-2-pro","size":"1024x1024","fit":"native"}`)
		if s.status != 200 || s.resp.Model != "flux-2-pro" || !s.resp.QAPass {
			t.Fatalf("%d %s, model %s", s.status, s.code, s.resp.Model)
		}
		// 1024x1024 at $0.03 a megapixel: 3.15 credits of $0.01.
		if a := s.decision.Attempts[0]; a.CostSource != providers.CostUsage || math.Abs(a.CostUSD-0.0315) > 1e-9 {
			t.Errorf("cost %v from %s, want 0.0315 from the submit's credits", a.CostUSD, a.CostSource)
		}
	})
	t.Run("task error, then ready", func(t *testing.T) {
		c.fake.on(vBFL, act{taskStatus: "Error"}, act{})
		before := len(c.fake.callsTo(vBFL))
		s := c.generate(t, `{"prompt":"a glass teapot on a table","model":"flux-2-pro","size":"1024x1024","fit":"native"}`)
		if s.status != 200 || s.resp.Model != "flux-2-pro" {
			t.Fatalf("%d %s, model %s", s.status, s.code, s.resp.Model)
		}
		if n := len(c.fake.callsTo(vBFL)) - before; n != 2 {
			t.Errorf("%d submits, want 2 (the failed task, the retry)", n)
		}
	})
}

// TestVendorContractNotOneImageModel: dall-e-3 makes one image a call; a
// request for two pinned to it moves on to a model that can make them
// (before, the vendor's 400 ended the request), after one call to OpenAI.
func TestVendorContractNotOneImageModel(t *testing.T) {
	t.Parallel()
	c := startContract(t, 0, dallE3)
	s := c.generate(t, `{"prompt":"two variations of a paper boat","model":"dall-e-3","n":2,"size":"1024x1024","fit":"native"}`)
	if s.status != 200 || s.resp.Model == "dall-e-3" || len(s.sizes) != 2 || !s.resp.Fallback {
		t.Fatalf("%d %s: model %s, %d images, fallback %v; want 2 images from another model", s.status, s.code, s.resp.Model, len(s.sizes), s.resp.Fallback)
	}
	calls := c.fake.callsTo(vOpenAI)
	if len(calls) == 0 || calls[0].Model != "dall-e-3" || calls[0].N != 2 || calls[0].ResponseFormat != "b64_json" {
		t.Fatalf("OpenAI calls %+v, want dall-e-3 asked for n=2 first, b64_json", calls)
	}
	for _, call := range calls[1:] {
		if call.Model == "dall-e-3" {
			t.Errorf("dall-e-3 called again (%+v): its limit is not worth a retry", call)
		}
	}
	a := s.decision.Attempts
	if len(a) < 2 || a[0].Model != "dall-e-3" || a[0].Error != string(providers.KindUnsupported) || a[len(a)-1].Status != "ok" {
		t.Errorf("attempts %+v, want dall-e-3 unsupported, then ok", a)
	}
	if len(s.qa) != 1 || !s.qa[0].Pass || !strings.EqualFold(s.qa[0].Model, s.resp.Model) {
		t.Errorf("QA events %+v, want one pass for %s", s.qa, s.resp.Model)
	}
}
