package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // vendors answer JPEG as well as PNG
	_ "image/png"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	_ "golang.org/x/image/webp" // and WebP

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/registry"
	"github.com/routelab/routelab/router"
)

const smokeHelp = `Send one cheap request to every real model whose vendor key is set, through the
same adapters, retries and native-size handling serve uses, and print per model:
status, latency, the size the vendor drew, cost and where the cost came from
(cost_source usage: the vendor's reported token usage; catalog: the catalog's
price per image). The request is each model's cheapest size and quality tier.

Keys are read from OPENAI_API_KEY, GEMINI_API_KEY (Gemini and Imagen),
IDEOGRAM_API_KEY, ARK_API_KEY (BytePlus Seedream) and BFL_API_KEY (FLUX), with
each *_BASE_URL (e.g. OPENAI_BASE_URL) for another endpoint. Models without a
key are listed with the variable that would enable them; with no key at all,
smoke says so and exits 0. It exits 1 when a model with a key fails.

  OPENAI_API_KEY=sk-... routelab smoke
  routelab smoke --catalog my-catalog.json --json`

// smokeResult is one model's line.
type smokeResult struct {
	Model      string  `json:"model"`
	Provider   string  `json:"provider"`
	Status     string  `json:"status"` // ok | error | no_key
	LatencyMS  int64   `json:"latency_ms,omitempty"`
	Requested  string  `json:"requested,omitempty"`
	Size       string  `json:"size,omitempty"` // as drawn, before serve resizes
	CostUSD    float64 `json:"cost_usd,omitempty"`
	CostSource string  `json:"cost_source,omitempty"`
	Error      string  `json:"error,omitempty"`
	KeyEnv     string  `json:"key_env,omitempty"` // for no_key: the variable to set
}

func runSmoke(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("smoke", smokeHelp)
	catalog := fs.String("catalog", "vendors", "model catalog: a file or a shipped catalog's name")
	timeout := fs.Duration("timeout", 2*time.Minute, "time limit for each model's request, retries included")
	prompt := fs.String("prompt", "a small red circle in the middle of a white background", "the prompt sent to every model")
	asJSON := fs.Bool("json", false, "print one JSON object per model")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cat, err := datasets.LoadCatalog(*catalog)
	if err != nil {
		return err
	}
	vendors := registry.VendorsFromEnv(env.Getenv)
	var results []smokeResult
	keyed := router.Catalog{Version: cat.Version}
	for _, m := range cat.Models {
		if m.Provider == "sim" || m.Simulated {
			continue // the simulated world's own models: nothing to smoke
		}
		if vendors[m.Provider].APIKey == "" {
			results = append(results, smokeResult{Model: m.Name, Provider: m.Provider, Status: "no_key", KeyEnv: registry.KeyEnv[m.Provider]})
			continue
		}
		keyed.Models = append(keyed.Models, m)
	}
	if len(keyed.Models) > 0 {
		reg, err := registry.Build(keyed, registry.Config{Vendors: vendors})
		if err != nil {
			return fmt.Errorf("smoke: %w", err)
		}
		for _, m := range keyed.Models {
			p, ok := reg.Providers[m.Name]
			if !ok {
				results = append(results, smokeResult{Model: m.Name, Provider: m.Provider, Status: "error", Error: reg.Missing[m.Name]})
				continue
			}
			results = append(results, smokeOne(ctx, p, m, *prompt, *timeout))
		}
	}
	if err := writeSmoke(env, results, *asJSON); err != nil {
		return err
	}
	failed := 0
	for _, r := range results {
		if r.Status == "error" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("smoke: %d of %d model(s) with a key failed", failed, len(keyed.Models))
	}
	return nil
}

// smokeOne sends m its cheapest request.
func smokeOne(ctx context.Context, p providers.Provider, m router.Model, prompt string, timeout time.Duration) smokeResult {
	size, tier, usd := cheapest(m)
	w, h, _ := router.ParseSize(size)
	r := smokeResult{Model: m.Name, Provider: m.Provider, Requested: size + " " + string(tier)}
	if !slices.Contains(m.Modes, router.ModeGenerate) {
		r.Status, r.Error = "error", "edit-only model: smoke sends generate requests"
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	res, err := p.Generate(ctx, providers.Request{RequestID: "smoke-" + strconv.FormatInt(start.UnixNano(), 36), Model: m.Name, Mode: string(router.ModeGenerate),
		Prompt: prompt, Width: w, Height: h, N: 1, Quality: string(tier), OutputFormat: "png"})
	r.LatencyMS = time.Since(start).Milliseconds()
	if err != nil {
		r.Status, r.Error = "error", err.Error()
		return r
	}
	if len(res.Images) == 0 {
		r.Status, r.Error = "error", "the vendor answered with no image"
		return r
	}
	r.Status, r.CostUSD, r.CostSource = "ok", res.CostUSD, res.CostSource
	if r.CostSource == "" {
		r.CostUSD, r.CostSource = usd, providers.CostCatalog
	}
	if c, _, err := image.DecodeConfig(bytes.NewReader(res.Images[0].Bytes)); err == nil {
		r.Size = fmt.Sprintf("%dx%d", c.Width, c.Height)
	} else {
		r.Status, r.Error = "error", fmt.Sprintf("the image does not decode: %v", err)
	}
	return r
}

// cheapest is m's cheapest size and tier and its catalog price; ties go to
// the smaller image, then the lower tier.
func cheapest(m router.Model) (string, router.Tier, float64) {
	bestSize, bestTier, best := "", router.TierDraft, -1.0
	for _, size := range m.Sizes {
		for _, t := range []router.Tier{router.TierDraft, router.TierStandard, router.TierPremium} {
			if c, ok := m.CostUSD[size][t]; ok && (best < 0 || c < best || c == best && pixels(size) < pixels(bestSize)) {
				bestSize, bestTier, best = size, t, c
			}
		}
	}
	return bestSize, bestTier, best
}

func pixels(size string) int {
	w, h, _ := router.ParseSize(size)
	return w * h
}

func writeSmoke(env Env, results []smokeResult, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	missing, tried := map[string][]string{}, 0
	for _, r := range results {
		if r.Status == "no_key" {
			missing[r.KeyEnv] = append(missing[r.KeyEnv], r.Model)
			continue
		}
		if tried++; tried == 1 {
			fmt.Fprintln(tw, "MODEL\tSTATUS\tLATENCY\tREQUESTED\tSIZE\tCOST\tCOST_SOURCE\tERROR")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d ms\t%s\t%s\t$%.4f\t%s\t%s\n", r.Model, r.Status, r.LatencyMS, r.Requested, r.Size, r.CostUSD, r.CostSource, r.Error)
	}
	tw.Flush()
	for _, key := range slices.Sorted(maps.Keys(missing)) {
		fmt.Fprintf(env.Stdout, "no %s: not tried: %s\n", key, strings.Join(missing[key], ", "))
	}
	if tried == 0 {
		fmt.Fprintln(env.Stdout, "no vendor key is set: nothing was sent (see routelab smoke --help)")
	}
	return nil
}
