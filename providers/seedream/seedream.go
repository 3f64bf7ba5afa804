// Package seedream adapts ByteDance's Seedream models on BytePlus ModelArk
// (Ark) to providers.Provider: POST /api/v3/images/generations, an
// OpenAI-like JSON body with the key as a bearer token. One endpoint serves
// generation and editing: references go in image (data URIs). Answers carry
// data[].b64_json (asked for) or data[].url, and usage.generated_images.
// Errors are {"error": {"code", "message"}}, sometimes inside a 200.
package seedream

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/internal/upstream"
)

// DefaultBaseURL is ModelArk's international (ap-southeast) endpoint; an
// API key belongs to one region.
const DefaultBaseURL = "https://ark.ap-southeast.bytepluses.com"

// Config configures one Seedream model.
type Config struct {
	APIKey     string // ARK_API_KEY
	BaseURL    string // default DefaultBaseURL
	Model      string // e.g. seedream-4-5-251128
	HTTPClient *http.Client
	Price      func(width, height int, tier string) float64 // per image, from the catalog
	Now        func() time.Time
}

// Client calls one Seedream model.
type Client struct{ cfg Config }

var _ providers.Provider = (*Client)(nil)

// New returns a client for cfg.Model.
func New(cfg Config) *Client {
	upstream.Defaults(&cfg.BaseURL, DefaultBaseURL, &cfg.HTTPClient, &cfg.Now)
	return &Client{cfg: cfg}
}

// Name is "byteplus".
func (c *Client) Name() string { return "byteplus" }

type request struct {
	Model          string   `json:"model"`
	Prompt         string   `json:"prompt"`
	Size           string   `json:"size,omitempty"`
	Image          []string `json:"image,omitempty"`
	ResponseFormat string   `json:"response_format"`
	Watermark      bool     `json:"watermark"`
	Sequential     string   `json:"sequential_image_generation"`
	Seed           *int64   `json:"seed,omitempty"`
}

type response struct {
	Data []struct {
		B64JSON string `json:"b64_json"`
		URL     string `json:"url"`
	} `json:"data"`
	Usage *struct {
		GeneratedImages int `json:"generated_images"`
	} `json:"usage"`
	Error *apiError `json:"error"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Generate makes one image (Seedream's sequential generation is off).
// Errors are *providers.Error: the *SensitiveContentDetected codes (input
// text or image, output image) are content_policy, 401/403 auth, 429
// rate_limited with Retry-After, 5xx unavailable, the deadline timeout.
func (c *Client) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	start := c.cfg.Now()
	body := request{Model: c.cfg.Model, Prompt: req.Prompt, ResponseFormat: "b64_json", Sequential: "disabled"}
	if req.Width > 0 && req.Height > 0 {
		body.Size = strconv.Itoa(req.Width) + "x" + strconv.Itoa(req.Height)
	}
	if req.Seed > 0 {
		s := int64(req.Seed % (1 << 31))
		body.Seed = &s
	}
	if req.Mode == "edit" {
		for _, ref := range req.References {
			body.Image = append(body.Image, "data:"+upstream.MIME(ref)+";base64,"+base64.StdEncoding.EncodeToString(ref))
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindBadRequest, Status: 400, Message: err.Error()}
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+"/api/v3/images/generations", bytes.NewReader(b))
	if err != nil {
		return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindBadRequest, Status: 400, Message: err.Error()}
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	resp, respBody, err := upstream.Do(ctx, c.cfg.HTTPClient, c.Name(), httpReq)
	if err != nil {
		return providers.Result{}, err
	}
	var out response
	decodeErr := json.Unmarshal(respBody, &out)
	if resp.StatusCode != http.StatusOK || out.Error != nil {
		return providers.Result{}, c.apiError(resp, out.Error, respBody)
	}
	if decodeErr != nil {
		return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: "decode response: " + decodeErr.Error()}
	}
	res := providers.Result{}
	for _, d := range out.Data {
		var im providers.Image
		switch {
		case d.B64JSON != "":
			if im, err = upstream.DecodeImage(d.B64JSON); err != nil {
				err = &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: "decode b64_json: " + err.Error()}
			}
		case d.URL != "":
			var raw []byte
			raw, err = upstream.Fetch(ctx, c.cfg.HTTPClient, c.Name(), d.URL)
			im = providers.Image{Bytes: raw, MIME: upstream.MIME(raw)}
		default:
			continue
		}
		if err != nil {
			return providers.Result{}, err
		}
		res.Images = append(res.Images, im)
	}
	if len(res.Images) == 0 {
		return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: "response has no images"}
	}
	res.Latency = c.cfg.Now().Sub(start)
	if c.cfg.Price != nil {
		n := len(res.Images)
		if out.Usage != nil && out.Usage.GeneratedImages > 0 {
			n = out.Usage.GeneratedImages // billed per generated image
		}
		res.CostUSD, res.CostSource = c.cfg.Price(req.Width, req.Height, req.Quality)*float64(n), providers.CostCatalog
	}
	return res, nil
}

func (c *Client) apiError(resp *http.Response, e *apiError, body []byte) error {
	status := resp.StatusCode
	if status == http.StatusOK {
		status = http.StatusBadGateway // an error inside a 200
	}
	msg := upstream.Truncate(string(body), 200)
	code := ""
	if e != nil {
		code, msg = e.Code, e.Code+": "+e.Message
	}
	pe := &providers.Error{Provider: c.Name(), Kind: upstream.KindForStatus(status), Status: status, Message: msg}
	switch {
	case strings.HasSuffix(code, "SensitiveContentDetected") || strings.HasPrefix(code, "SensitiveContentDetected"):
		pe.Kind, pe.Status, pe.Reason = providers.KindContentPolicy, http.StatusBadRequest, code
	case pe.Kind == providers.KindRateLimited:
		pe.RetryAfter = upstream.RetryAfter(resp.Header, c.cfg.Now())
	}
	return pe
}
