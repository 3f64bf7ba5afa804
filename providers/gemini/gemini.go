// Package gemini adapts Google's Gemini API image models to
// providers.Provider: Gemini image models through
// POST /v1beta/models/{model}:generateContent (prompt and reference images as
// parts, images back as inlineData parts), and Imagen models through
// POST /v1beta/models/{model}:predict (images back as bytesBase64Encoded).
// The key travels in the x-goog-api-key header; errors come in Google's
// {"error":{code,message,status,details}} shape.
package gemini

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/internal/upstream"
)

// DefaultBaseURL is the Gemini API root.
const DefaultBaseURL = "https://generativelanguage.googleapis.com/v1beta"

// Config configures one upstream model.
type Config struct {
	APIKey     string // GEMINI_API_KEY
	BaseURL    string // default DefaultBaseURL
	Model      string // e.g. gemini-2.5-flash-image, imagen-4.0-generate-001
	HTTPClient *http.Client
	Price      func(width, height int, tier string) float64
	Now        func() time.Time
}

// Client calls one Gemini or Imagen model.
type Client struct{ cfg Config }

var _ providers.Provider = (*Client)(nil)

// New returns a client for cfg.Model.
func New(cfg Config) *Client {
	upstream.Defaults(&cfg.BaseURL, DefaultBaseURL, &cfg.HTTPClient, &cfg.Now)
	return &Client{cfg: cfg}
}

// Name is "gemini".
func (c *Client) Name() string { return "gemini" }

func (c *Client) imagen() bool { return strings.HasPrefix(c.cfg.Model, "imagen") }

// Aspect ratios each API accepts.
var (
	geminiAspects = []string{"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
	imagenAspects = []string{"1:1", "3:4", "4:3", "9:16", "16:9"}
)

type part struct {
	Text       string      `json:"text,omitempty"`
	InlineData *inlineData `json:"inlineData,omitempty"`
}

type inlineData struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

type imageConfig struct {
	AspectRatio string `json:"aspectRatio,omitempty"`
}

type generateContentRequest struct {
	Contents         []content `json:"contents"`
	GenerationConfig struct {
		ResponseModalities []string     `json:"responseModalities"`
		ImageConfig        *imageConfig `json:"imageConfig,omitempty"`
	} `json:"generationConfig"`
}

type generateContentResponse struct {
	Candidates []struct {
		Content struct {
			Parts []part `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
	} `json:"candidates"`
	PromptFeedback *struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
}

type predictRequest struct {
	Instances  []map[string]string `json:"instances"`
	Parameters struct {
		SampleCount int    `json:"sampleCount"`
		AspectRatio string `json:"aspectRatio,omitempty"`
	} `json:"parameters"`
}

type predictResponse struct {
	Predictions []struct {
		BytesBase64Encoded string `json:"bytesBase64Encoded"`
		MimeType           string `json:"mimeType"`
		RAIFilteredReason  string `json:"raiFilteredReason"`
	} `json:"predictions"`
}

type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type       string `json:"@type"`
			Reason     string `json:"reason"`
			RetryDelay string `json:"retryDelay"`
		} `json:"details"`
	} `json:"error"`
}

// Generate calls generateContent (Gemini models, once per image asked for)
// or predict (Imagen). Errors are *providers.Error: content_policy when the
// prompt or the output is blocked (promptFeedback.blockReason, a safety
// finishReason, a text-only refusal, Imagen's RAI filter), auth for invalid
// keys and permission errors, rate_limited (with RetryInfo's delay) for
// RESOURCE_EXHAUSTED, unavailable for 5xx, timeout past the deadline.
func (c *Client) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	start := c.cfg.Now()
	var (
		res providers.Result
		err error
	)
	if c.imagen() {
		res, err = c.predict(ctx, req)
	} else {
		for range max(req.N, 1) {
			var one providers.Result
			if one, err = c.generateContent(ctx, req); err != nil {
				break
			}
			res.Images = append(res.Images, one.Images...)
		}
	}
	if err != nil {
		return providers.Result{}, err
	}
	res.Latency = c.cfg.Now().Sub(start)
	if c.cfg.Price != nil {
		res.CostUSD = c.cfg.Price(req.Width, req.Height, req.Quality) * float64(len(res.Images))
	}
	return res, nil
}

func (c *Client) generateContent(ctx context.Context, req providers.Request) (providers.Result, error) {
	var body generateContentRequest
	parts := []part{{Text: req.Prompt}}
	if req.Mode == "edit" {
		for _, ref := range req.References {
			parts = append(parts, part{InlineData: &inlineData{MimeType: upstream.MIME(ref), Data: base64.StdEncoding.EncodeToString(ref)}})
		}
	}
	body.Contents = []content{{Role: "user", Parts: parts}}
	body.GenerationConfig.ResponseModalities = []string{"TEXT", "IMAGE"}
	if req.Width > 0 && req.Height > 0 {
		body.GenerationConfig.ImageConfig = &imageConfig{AspectRatio: upstream.Aspect(req.Width, req.Height, geminiAspects, "1:1")}
	}
	respBody, err := c.post(ctx, ":generateContent", body)
	if err != nil {
		return providers.Result{}, err
	}
	var out generateContentResponse
	if err := json.Unmarshal(respBody, &out); err != nil {
		return providers.Result{}, c.bad("decode response: " + err.Error())
	}
	if out.PromptFeedback != nil && out.PromptFeedback.BlockReason != "" {
		return providers.Result{}, c.policy("prompt_blocked_"+strings.ToLower(out.PromptFeedback.BlockReason), "prompt blocked: "+out.PromptFeedback.BlockReason)
	}
	var res providers.Result
	var text, finish string
	for _, cand := range out.Candidates {
		finish = cand.FinishReason
		for _, p := range cand.Content.Parts {
			if p.InlineData != nil && strings.HasPrefix(p.InlineData.MimeType, "image/") {
				im, err := upstream.DecodeImage(p.InlineData.Data)
				if err != nil {
					return providers.Result{}, c.bad("decode inlineData: " + err.Error())
				}
				res.Images = append(res.Images, im)
			}
			text += p.Text
		}
	}
	if len(res.Images) > 0 {
		return res, nil
	}
	switch finish {
	case "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "RECITATION", "IMAGE_RECITATION":
		return providers.Result{}, c.policy("output_blocked_"+strings.ToLower(finish), "output blocked: "+finish)
	}
	if strings.TrimSpace(text) != "" {
		// The model answered in words instead of drawing: a refusal, which
		// another attempt with the same prompt would repeat.
		return providers.Result{}, c.policy("text_only_answer", "no image, model said: "+upstream.Truncate(text, 160))
	}
	return providers.Result{}, c.bad("response has no image (finishReason " + finish + ")")
}

func (c *Client) predict(ctx context.Context, req providers.Request) (providers.Result, error) {
	var body predictRequest
	body.Instances = []map[string]string{{"prompt": req.Prompt}}
	body.Parameters.SampleCount = max(req.N, 1)
	if req.Width > 0 && req.Height > 0 {
		body.Parameters.AspectRatio = upstream.Aspect(req.Width, req.Height, imagenAspects, "1:1")
	}
	respBody, err := c.post(ctx, ":predict", body)
	if err != nil {
		return providers.Result{}, err
	}
	var out predictResponse
	if err := json.Unmarshal(respBody, &out); err != nil {
		return providers.Result{}, c.bad("decode response: " + err.Error())
	}
	var res providers.Result
	filtered := ""
	for _, p := range out.Predictions {
		if p.BytesBase64Encoded == "" {
			filtered = p.RAIFilteredReason
			continue
		}
		im, err := upstream.DecodeImage(p.BytesBase64Encoded)
		if err != nil {
			return providers.Result{}, c.bad("decode bytesBase64Encoded: " + err.Error())
		}
		res.Images = append(res.Images, im)
	}
	if len(res.Images) == 0 {
		// Imagen drops filtered images from predictions; none left means the
		// safety filter took them all.
		if filtered == "" {
			filtered = "all images filtered"
		}
		return providers.Result{}, c.policy("images_filtered", filtered)
	}
	return res, nil
}

// post sends body to the model's method and returns the 200 body, or the
// mapped error.
func (c *Client) post(ctx context.Context, method string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, &providers.Error{Provider: c.Name(), Kind: providers.KindBadRequest, Status: 400, Message: err.Error()}
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+"/models/"+c.cfg.Model+method, bytes.NewReader(b))
	if err != nil {
		return nil, &providers.Error{Provider: c.Name(), Kind: providers.KindBadRequest, Status: 400, Message: err.Error()}
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("x-goog-api-key", c.cfg.APIKey)
	resp, respBody, err := upstream.Do(ctx, c.cfg.HTTPClient, c.Name(), httpReq)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.apiError(resp, respBody)
	}
	return respBody, nil
}

func (c *Client) apiError(resp *http.Response, body []byte) error {
	var ae apiError
	_ = json.Unmarshal(body, &ae) // non-JSON bodies map by status alone
	msg := ae.Error.Message
	if msg == "" {
		msg = upstream.Truncate(string(body), 200)
	}
	if ae.Error.Status != "" {
		msg = ae.Error.Status + ": " + msg
	}
	e := &providers.Error{Provider: c.Name(), Kind: upstream.KindForStatus(resp.StatusCode), Status: resp.StatusCode, Message: msg}
	lower := strings.ToLower(ae.Error.Message)
	for _, d := range ae.Error.Details {
		if d.Reason == "API_KEY_INVALID" || d.Reason == "API_KEY_SERVICE_BLOCKED" {
			e.Kind = providers.KindAuth
		}
		if strings.HasSuffix(d.Type, "google.rpc.RetryInfo") && d.RetryDelay != "" {
			if delay, err := time.ParseDuration(d.RetryDelay); err == nil {
				e.RetryAfter = delay
			}
		}
	}
	switch {
	case ae.Error.Status == "UNAUTHENTICATED" || ae.Error.Status == "PERMISSION_DENIED":
		e.Kind = providers.KindAuth
	case e.Kind == providers.KindBadRequest && (strings.Contains(lower, "blocked") || strings.Contains(lower, "violate") || strings.Contains(lower, "safety")):
		// Imagen answers 400 INVALID_ARGUMENT "The response is blocked, as it
		// may violate our policies."
		e.Kind, e.Reason = providers.KindContentPolicy, "blocked"
	case e.Kind == providers.KindRateLimited && e.RetryAfter == 0:
		e.RetryAfter = upstream.RetryAfter(resp.Header, c.cfg.Now())
	}
	if e.Kind != providers.KindRateLimited {
		e.RetryAfter = 0
	}
	return e
}

func (c *Client) policy(reason, msg string) error {
	return &providers.Error{Provider: c.Name(), Kind: providers.KindContentPolicy, Status: 400, Message: msg, Reason: reason}
}

// bad is an answer we cannot use: the upstream misbehaved, which another
// attempt may not repeat.
func (c *Client) bad(msg string) error {
	return &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: msg}
}
