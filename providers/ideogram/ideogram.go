// Package ideogram adapts the Ideogram API (Ideogram 3.0) to
// providers.Provider: POST /v1/ideogram-v3/generate for generation,
// /v1/ideogram-v3/remix for edits from a reference and /v1/ideogram-v3/edit
// for masked edits, all multipart/form-data with the key in the Api-Key
// header. Responses list data[].url (ephemeral links) that are fetched at
// once; data[].is_image_safe false means the image was withheld.
package ideogram

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/internal/upstream"
)

// DefaultBaseURL is Ideogram's API root.
const DefaultBaseURL = "https://api.ideogram.ai"

// Config configures the client.
type Config struct {
	APIKey     string // IDEOGRAM_API_KEY
	BaseURL    string // default DefaultBaseURL
	HTTPClient *http.Client
	Price      func(width, height int, tier string) float64
	Now        func() time.Time
	// RenderingSpeed fixes TURBO, DEFAULT or QUALITY (a catalog model per
	// speed, each with its price); "" picks it from the request's tier.
	RenderingSpeed string
}

// Client calls Ideogram 3.0.
type Client struct{ cfg Config }

var _ providers.Provider = (*Client)(nil)

// New returns a client.
func New(cfg Config) *Client {
	upstream.Defaults(&cfg.BaseURL, DefaultBaseURL, &cfg.HTTPClient, &cfg.Now)
	return &Client{cfg: cfg}
}

// Name is "ideogram".
func (c *Client) Name() string { return "ideogram" }

// aspects are the aspect_ratio values Ideogram 3.0 accepts.
var aspects = []string{"1x3", "3x1", "1x2", "2x1", "9x16", "16x9", "10x16", "16x10", "2x3", "3x2", "3x4", "4x3", "4x5", "5x4", "1x1"}

type generateResponse struct {
	Created string `json:"created"`
	Data    []struct {
		URL         string `json:"url"`
		Prompt      string `json:"prompt"`
		Resolution  string `json:"resolution"`
		IsImageSafe bool   `json:"is_image_safe"`
		Seed        int64  `json:"seed"`
		StyleType   string `json:"style_type"`
	} `json:"data"`
}

// Generate calls generate, remix (edit with a reference) or edit (with a
// mask), then fetches the returned URLs. Errors are *providers.Error: 422
// (the prompt failed the safety check) and withheld unsafe images are
// content_policy, 401/403 auth, 429 rate_limited with Retry-After, 5xx
// unavailable, deadline timeout.
func (c *Client) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	start := c.cfg.Now()
	f := upstream.NewForm()
	f.Field("prompt", req.Prompt)
	rs := c.cfg.RenderingSpeed
	if rs == "" {
		rs = speed(req.Quality)
	}
	f.Field("rendering_speed", rs)
	// Ideogram's magic_prompt defaults to AUTO, which may rewrite the
	// prompt, and with it the exact words a user asked to see rendered.
	f.Field("magic_prompt", "OFF")
	f.Field("num_images", strconv.Itoa(max(req.N, 1)))
	if req.Seed > 0 {
		f.Field("seed", strconv.FormatUint(req.Seed%2147483648, 10))
	}
	path := "/v1/ideogram-v3/generate"
	switch {
	case req.Mode == "edit" && len(req.References) > 0 && len(req.Mask) > 0:
		path = "/v1/ideogram-v3/edit"
		f.File("image", "image."+ext(req.References[0]), upstream.MIME(req.References[0]), req.References[0])
		f.File("mask", "mask."+ext(req.Mask), upstream.MIME(req.Mask), req.Mask)
	case req.Mode == "edit" && len(req.References) > 0:
		path = "/v1/ideogram-v3/remix"
		f.File("image", "image."+ext(req.References[0]), upstream.MIME(req.References[0]), req.References[0])
		f.Field("image_weight", "70") // keep the subject: lean on the reference
		f.Field("aspect_ratio", upstream.Aspect(req.Width, req.Height, aspects, "1x1"))
	default:
		f.Field("aspect_ratio", upstream.Aspect(req.Width, req.Height, aspects, "1x1"))
	}
	body, contentType, err := f.Close()
	if err != nil {
		return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindBadRequest, Status: 400, Message: err.Error()}
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+path, body)
	if err != nil {
		return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindBadRequest, Status: 400, Message: err.Error()}
	}
	httpReq.Header.Set("Content-Type", contentType)
	httpReq.Header.Set("Api-Key", c.cfg.APIKey)
	resp, respBody, err := upstream.Do(ctx, c.cfg.HTTPClient, c.Name(), httpReq)
	if err != nil {
		return providers.Result{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return providers.Result{}, c.apiError(resp, respBody)
	}
	var out generateResponse
	if err := json.Unmarshal(respBody, &out); err != nil {
		return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: "decode response: " + err.Error()}
	}
	var res providers.Result
	unsafe := 0
	for _, d := range out.Data {
		if !d.IsImageSafe || d.URL == "" {
			unsafe++
			continue
		}
		b, err := upstream.Fetch(ctx, c.cfg.HTTPClient, c.Name(), d.URL)
		if err != nil {
			return providers.Result{}, err
		}
		res.Images = append(res.Images, providers.Image{Bytes: b, MIME: upstream.MIME(b)})
	}
	if len(res.Images) == 0 {
		if unsafe > 0 {
			return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindContentPolicy, Status: 400,
				Message: fmt.Sprintf("%d image(s) withheld as unsafe", unsafe), Reason: "image_unsafe"}
		}
		return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: "response has no images"}
	}
	res.Latency = c.cfg.Now().Sub(start)
	if c.cfg.Price != nil {
		res.CostUSD = c.cfg.Price(req.Width, req.Height, req.Quality) * float64(len(res.Images))
	}
	return res, nil
}

func (c *Client) apiError(resp *http.Response, body []byte) error {
	msg := errorMessage(body)
	e := &providers.Error{Provider: c.Name(), Kind: upstream.KindForStatus(resp.StatusCode), Status: resp.StatusCode, Message: msg}
	switch {
	case resp.StatusCode == http.StatusUnprocessableEntity:
		e.Kind, e.Reason = providers.KindContentPolicy, "safety_check_failed" // "Prompt failed the safety check" (Ideogram's 422)
	case e.Kind == providers.KindRateLimited:
		e.RetryAfter = upstream.RetryAfter(resp.Header, c.cfg.Now())
	}
	return e
}

// errorMessage reads the message from the error shapes Ideogram and its
// gateway use ({"error": "..."}, {"detail": "..."}, {"message": "..."}), else
// the body text.
func errorMessage(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		for _, k := range []string{"error", "detail", "message"} {
			switch v := m[k].(type) {
			case string:
				return v
			case map[string]any:
				if s, ok := v["message"].(string); ok {
					return s
				}
			}
		}
	}
	return upstream.Truncate(string(body), 200)
}

// speed maps routelab's tier to Ideogram's rendering_speed.
func speed(tier string) string {
	switch tier {
	case "draft":
		return "TURBO"
	case "premium":
		return "QUALITY"
	}
	return "DEFAULT"
}

func ext(b []byte) string { return strings.TrimPrefix(upstream.MIME(b), "image/") }
