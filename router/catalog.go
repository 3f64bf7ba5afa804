package router

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Model is one entry of the model catalog: what it can do, what it costs and
// how it behaves operationally. Success probabilities are not here: the
// router has to learn them from logged outcomes.
type Model struct {
	Name      string `json:"name"`
	Provider  string `json:"provider"`
	Simulated bool   `json:"simulated"`
	Modes     []Mode `json:"modes"`
	// MaxRefs is the number of reference images an edit may carry.
	MaxRefs int      `json:"max_refs"`
	Sizes   []string `json:"sizes"` // "WxH"
	// CostUSD is the price of one image by size ("WxH") and quality tier.
	CostUSD       map[string]map[Tier]float64 `json:"cost_usd"`
	LatencyP50MS  float64                     `json:"latency_p50_ms"`
	LatencySigma  float64                     `json:"latency_sigma"` // log-normal sigma
	ErrorRate     float64                     `json:"error_rate"`
	RateLimitRate float64                     `json:"rate_limit_rate"`
	// RefusalRate is the share of calls the upstream's safety system
	// refuses (content_policy: final, the request fails without fallback).
	RefusalRate float64 `json:"refusal_rate,omitempty"`
	// PinOnly keeps the model out of trained policies: it is reached only
	// through a policy that lists it and an explicit pin (a request's
	// model, an experiment arm's model override), e.g. a new model under
	// canary before any traffic has been logged for it.
	PinOnly     bool   `json:"pin_only,omitempty"`
	Description string `json:"description,omitempty"`
	Source      string `json:"source,omitempty"` // public figures the entry is shaped after
	// TokenUSDPer1M prices a call from the token usage the vendor reports
	// (keys text_input, image_input, image_output, text_output; USD per
	// million tokens): the GPT image models bill by tokens, and CostUSD is
	// then only the estimate routing compares models with.
	TokenUSDPer1M map[string]float64 `json:"token_usd_per_1m,omitempty"`
	// The vendor's own terms, for people reading the catalog: how the
	// vendor computes the price that CostUSD tabulates, the size rule
	// when the model takes arbitrary sizes, and where each figure comes
	// from (URL and date read, or that it was not found).
	PriceFormula  string `json:"price_formula,omitempty"`
	PriceSource   string `json:"price_source,omitempty"`
	SizeRule      string `json:"size_rule,omitempty"`
	RefsSource    string `json:"refs_source,omitempty"`
	LatencySource string `json:"latency_source,omitempty"`
	Endpoint      string `json:"endpoint,omitempty"`
	// NativeSizes are the sizes ("WxH") the vendor answers at, one per
	// aspect it offers (Gemini answers a 3:2 request at 1248x832): QA
	// judges the model's image against the one nearest the requested
	// aspect. Empty: the model answers at the requested size.
	NativeSizes []string `json:"native_sizes,omitempty"`
	// NativeSizesSource says where the native sizes come from (URL, date).
	NativeSizesSource string `json:"native_sizes_source,omitempty"`
	// TransparentBackground: the model can answer with a transparent
	// background (OpenAI's background: transparent); a request asking for
	// one is routed only to such models.
	TransparentBackground bool `json:"transparent_background,omitempty"`
	// MaxImages is the most images one request to the model may ask for
	// (Imagen's sampleCount 1-4; one for adapters that make one image a
	// call); a request for more is routed elsewhere. 0: any n the server
	// accepts. MaxImagesSource says where the bound comes from.
	MaxImages       int    `json:"max_images,omitempty"`
	MaxImagesSource string `json:"max_images_source,omitempty"`
	// SimulateAs names the simulated model whose hidden truth (success per
	// task, edit-chain decay) the simulated world gives this model when it
	// acts it out, e.g. a vendor model served without a key. Empty: the
	// world's truth for the model's own name, else a flat 0.5.
	SimulateAs string `json:"simulate_as,omitempty"`
}

// Catalog is the set of models a deployment routes between.
type Catalog struct {
	Version      string  `json:"version"`
	DefaultModel string  `json:"default_model"`
	Models       []Model `json:"models"`
}

// Model returns the catalog entry called name.
func (c *Catalog) Model(name string) (Model, bool) {
	for _, m := range c.Models {
		if m.Name == name {
			return m, true
		}
	}
	return Model{}, false
}

// Names lists the model names in catalog order.
func (c *Catalog) Names() []string {
	out := make([]string, len(c.Models))
	for i, m := range c.Models {
		out[i] = m.Name
	}
	return out
}

// Validate checks a catalog for the mistakes that would make routing
// silently wrong.
func (c *Catalog) Validate() error {
	if len(c.Models) == 0 {
		return fmt.Errorf("catalog has no models")
	}
	if len(c.Models) > MaxModels {
		return fmt.Errorf("catalog has %d models, at most %d", len(c.Models), MaxModels)
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		if err := m.Validate(); err != nil {
			return err
		}
		if seen[m.Name] {
			return fmt.Errorf("model %q listed twice", m.Name)
		}
		seen[m.Name] = true
	}
	if c.DefaultModel != "" && !seen[c.DefaultModel] {
		return fmt.Errorf("default model %q is not in the catalog", c.DefaultModel)
	}
	return nil
}

// Validate checks one model entry.
func (m *Model) Validate() error {
	if m.Name == "" || m.Provider == "" {
		return fmt.Errorf("model %q: name and provider are required", m.Name)
	}
	if len(m.Modes) == 0 || len(m.Sizes) == 0 {
		return fmt.Errorf("model %q: modes and sizes are required", m.Name)
	}
	if m.MaxImages < 0 {
		return fmt.Errorf("model %q: max_images %d is negative", m.Name, m.MaxImages)
	}
	for _, s := range m.Sizes {
		if _, _, err := ParseSize(s); err != nil {
			return fmt.Errorf("model %q: %w", m.Name, err)
		}
		byTier, ok := m.CostUSD[s]
		if !ok {
			return fmt.Errorf("model %q: no cost for size %s", m.Name, s)
		}
		for _, t := range []Tier{TierDraft, TierStandard, TierPremium} {
			c, ok := byTier[t]
			switch {
			case !ok || c < 0 || math.IsNaN(c) || math.IsInf(c, 0):
				return fmt.Errorf("model %q: no cost for size %s tier %s", m.Name, s, t)
			case c == 0 && m.billed():
				// a vendor bills every image: $0 is a price left out, and
				// would make the router prefer the model and the spend
				// figures wrong
				return fmt.Errorf("model %q: cost for size %s tier %s is $0; a vendor model needs its real price", m.Name, s, t)
			}
		}
	}
	for _, s := range m.NativeSizes {
		if _, _, err := ParseSize(s); err != nil {
			return fmt.Errorf("model %q: native size: %w", m.Name, err)
		}
	}
	if len(m.NativeSizes) > 0 && m.NativeSizesSource == "" {
		return fmt.Errorf("model %q: native_sizes without native_sizes_source", m.Name)
	}
	for k, v := range m.TokenUSDPer1M {
		switch {
		case k != "text_input" && k != "image_input" && k != "image_output" && k != "text_output":
			return fmt.Errorf("model %q: token_usd_per_1m: unknown kind %q", m.Name, k)
		case v <= 0:
			return fmt.Errorf("model %q: token_usd_per_1m[%s] = %v, want a price above 0", m.Name, k, v)
		}
	}
	if len(m.TokenUSDPer1M) > 0 && m.TokenUSDPer1M["image_output"] == 0 {
		return fmt.Errorf("model %q: token_usd_per_1m without image_output", m.Name)
	}
	if m.LatencyP50MS <= 0 || m.LatencySigma < 0 {
		return fmt.Errorf("model %q: latency_p50_ms must be > 0 and latency_sigma >= 0", m.Name)
	}
	if m.ErrorRate < 0 || m.RateLimitRate < 0 || m.RefusalRate < 0 || m.ErrorRate+m.RateLimitRate+m.RefusalRate >= 1 {
		return fmt.Errorf("model %q: error, rate-limit and refusal rates must be in [0,1) together", m.Name)
	}
	return nil
}

// billed reports whether a vendor charges for m's images: every model but
// the simulated world's own.
func (m *Model) billed() bool { return m.Provider != "sim" && !m.Simulated }

// NativeSize is the size the model answers a w×h request at: of its
// native sizes, the one whose aspect is nearest to w/h (on a log scale, so
// 2:1 and 1:2 are as far from 1:1; ties go to the earlier entry), or w×h
// itself when it has none or w or h is not positive.
func (m *Model) NativeSize(w, h int) (int, int) {
	if len(m.NativeSizes) == 0 || w <= 0 || h <= 0 {
		return w, h
	}
	want := math.Log(float64(w) / float64(h))
	bw, bh, best := w, h, math.Inf(1)
	for _, s := range m.NativeSizes {
		nw, nh, err := ParseSize(s)
		if err != nil {
			continue // Validate rejects these
		}
		if d := math.Abs(math.Log(float64(nw)/float64(nh)) - want); d < best {
			bw, bh, best = nw, nh, d
		}
	}
	return bw, bh
}

// NativeSize is the named model's Model.NativeSize; w×h for a model not
// in the catalog.
func (c *Catalog) NativeSize(model string, w, h int) (int, int) {
	if m, ok := c.Model(model); ok {
		return m.NativeSize(w, h)
	}
	return w, h
}

// Supports reports whether the model can serve mode at all.
func (m *Model) Supports(mode Mode) bool {
	for _, x := range m.Modes {
		if x == mode {
			return true
		}
	}
	return false
}

// LatencyP90MS is the 90th percentile of the model's log-normal latency.
func (m *Model) LatencyP90MS() float64 {
	return m.LatencyP50MS * math.Exp(1.2815515655446004*m.LatencySigma)
}

// ParseSize parses "WxH".
func ParseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(s, "x")
	if ok {
		w, err = strconv.Atoi(a)
		if err == nil {
			h, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("bad size %q, want WxH", s)
	}
	return w, h, nil
}
