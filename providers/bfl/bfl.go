// Package bfl adapts Black Forest Labs' FLUX API to providers.Provider. It
// is submit-and-poll: POST /v1/{model} (JSON, key in the x-key header)
// answers {id, polling_url, cost}, and GET polling_url answers a status
// until it is Ready, with result.sample, a signed URL of the image that is
// fetched at once (it expires). Edits send the references as input_image,
// input_image_2 ... input_image_8 (base64).
package bfl

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/internal/upstream"
)

// DefaultBaseURL is BFL's global API root.
const DefaultBaseURL = "https://api.bfl.ai"

// maxRefs is how many input images FLUX.2 takes.
const maxRefs = 8

// Config configures one FLUX model.
type Config struct {
	APIKey     string // BFL_API_KEY
	BaseURL    string // default DefaultBaseURL
	Model      string // endpoint name, e.g. flux-2-pro
	HTTPClient *http.Client
	// Price is the catalog price of one image, used when the submit
	// response carries no cost.
	Price func(width, height int, tier string) float64
	// PollEvery is the wait between polls; default 500 ms.
	PollEvery time.Duration
	Sleep     func(ctx context.Context, d time.Duration) error // default a timer; tests inject one
	Now       func() time.Time
}

// Client calls one FLUX model.
type Client struct{ cfg Config }

var _ providers.Provider = (*Client)(nil)

// New returns a client for cfg.Model.
func New(cfg Config) *Client {
	upstream.Defaults(&cfg.BaseURL, DefaultBaseURL, &cfg.HTTPClient, &cfg.Now)
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 500 * time.Millisecond
	}
	if cfg.Sleep == nil {
		cfg.Sleep = upstream.Sleep
	}
	return &Client{cfg: cfg}
}

// Name is "bfl".
func (c *Client) Name() string { return "bfl" }

type submitResponse struct {
	ID         string   `json:"id"`
	PollingURL string   `json:"polling_url"`
	Cost       *float64 `json:"cost"` // credits; one credit is $0.01
}

type pollResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Result *struct {
		Sample string `json:"sample"`
	} `json:"result"`
}

// Generate submits the request, polls until the image is ready, and fetches
// it. The cost is the submit response's cost (credits of $0.01) when it has
// one (cost_source usage), else the catalog price. Errors are
// *providers.Error: a moderated request is content_policy, 402 (out of
// credits) auth, 429 rate_limited with Retry-After, 5xx and a failed task
// unavailable, the deadline timeout.
func (c *Client) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	start := c.cfg.Now()
	sub, err := c.submit(ctx, req)
	if err != nil {
		return providers.Result{}, err
	}
	sample, err := c.poll(ctx, sub.PollingURL)
	if err != nil {
		return providers.Result{}, err
	}
	b, err := upstream.Fetch(ctx, c.cfg.HTTPClient, c.Name(), sample)
	if err != nil {
		return providers.Result{}, err
	}
	res := providers.Result{Images: []providers.Image{{Bytes: b, MIME: upstream.MIME(b)}}, Latency: c.cfg.Now().Sub(start)}
	switch {
	case sub.Cost != nil:
		res.CostUSD, res.CostSource = *sub.Cost/100, providers.CostUsage
	case c.cfg.Price != nil:
		res.CostUSD, res.CostSource = c.cfg.Price(req.Width, req.Height, req.Quality), providers.CostCatalog
	}
	return res, nil
}

func (c *Client) submit(ctx context.Context, req providers.Request) (submitResponse, error) {
	body := map[string]any{"prompt": req.Prompt, "output_format": "png"}
	if req.Width > 0 && req.Height > 0 {
		body["width"], body["height"] = req.Width, req.Height
	}
	if req.OutputFormat == "jpeg" || req.OutputFormat == "jpg" {
		body["output_format"] = "jpeg"
	}
	if req.Seed > 0 {
		body["seed"] = req.Seed % (1 << 31)
	}
	if req.Mode == "edit" {
		if len(req.References) > maxRefs {
			return submitResponse{}, &providers.Error{Provider: c.Name(), Kind: providers.KindBadRequest, Status: 400,
				Message: fmt.Sprintf("%d references, FLUX takes at most %d", len(req.References), maxRefs)}
		}
		for i, ref := range req.References {
			key := "input_image"
			if i > 0 {
				key = fmt.Sprintf("input_image_%d", i+1)
			}
			body[key] = base64.StdEncoding.EncodeToString(ref)
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return submitResponse{}, &providers.Error{Provider: c.Name(), Kind: providers.KindBadRequest, Status: 400, Message: err.Error()}
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+"/v1/"+c.cfg.Model, bytes.NewReader(b))
	if err != nil {
		return submitResponse{}, &providers.Error{Provider: c.Name(), Kind: providers.KindBadRequest, Status: 400, Message: err.Error()}
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("x-key", c.cfg.APIKey)
	resp, respBody, err := upstream.Do(ctx, c.cfg.HTTPClient, c.Name(), httpReq)
	if err != nil {
		return submitResponse{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return submitResponse{}, c.apiError(resp, respBody)
	}
	var sub submitResponse
	if err := json.Unmarshal(respBody, &sub); err != nil || sub.PollingURL == "" {
		return submitResponse{}, &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: fmt.Sprintf("submit answered no polling_url (%v)", err)}
	}
	if !c.trusted(sub.PollingURL) {
		// The key goes with every poll: never to a host that is not BFL's.
		return submitResponse{}, &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: "polling_url is not on a bfl.ai host"}
	}
	return sub, nil
}

// trusted: the polling URL is https on a bfl.ai host, or on the configured
// API's own host (a regional endpoint, a test server).
func (c *Client) trusted(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	base, _ := url.Parse(c.cfg.BaseURL)
	if base != nil && u.Scheme == base.Scheme && u.Host == base.Host {
		return true
	}
	h := u.Hostname()
	return u.Scheme == "https" && (h == "bfl.ai" || strings.HasSuffix(h, ".bfl.ai"))
}

// poll asks pollURL until the task is Ready and returns the sample URL.
func (c *Client) poll(ctx context.Context, pollURL string) (string, error) {
	for {
		httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, pollURL, nil)
		if err != nil {
			return "", &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: err.Error()}
		}
		httpReq.Header.Set("x-key", c.cfg.APIKey)
		resp, body, err := upstream.Do(ctx, c.cfg.HTTPClient, c.Name(), httpReq)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", c.apiError(resp, body)
		}
		var p pollResponse
		if err := json.Unmarshal(body, &p); err != nil {
			return "", &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: "decode poll: " + err.Error()}
		}
		switch p.Status {
		case "Ready":
			if p.Result == nil || p.Result.Sample == "" {
				return "", &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: "ready without a sample"}
			}
			return p.Result.Sample, nil
		case "Request Moderated", "Content Moderated":
			return "", &providers.Error{Provider: c.Name(), Kind: providers.KindContentPolicy, Status: 400, Message: p.Status,
				Reason: strings.ReplaceAll(strings.ToLower(p.Status), " ", "_")}
		case "Error", "Failed", "Task not found":
			return "", &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: "task " + p.Status}
		}
		// Pending (queued or running): ask again after a wait.
		if err := c.cfg.Sleep(ctx, c.cfg.PollEvery); err != nil {
			return "", upstream.TransportError(ctx, c.Name(), err)
		}
	}
}

func (c *Client) apiError(resp *http.Response, body []byte) error {
	e := &providers.Error{Provider: c.Name(), Kind: upstream.KindForStatus(resp.StatusCode), Status: resp.StatusCode,
		Message: upstream.Truncate(string(body), 200)}
	switch {
	case resp.StatusCode == http.StatusPaymentRequired:
		e.Kind = providers.KindAuth // out of credits: no retry helps until someone pays
	case e.Kind == providers.KindRateLimited:
		e.RetryAfter = upstream.RetryAfter(resp.Header, c.cfg.Now())
	}
	return e
}
