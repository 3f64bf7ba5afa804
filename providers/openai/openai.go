// Package openai adapts the OpenAI Images API (gpt-image-1, dall-e-3,
// dall-e-2) to providers.Provider: POST /v1/images/generations (JSON) for
// generation and POST /v1/images/edits (multipart) for edits, images back as
// b64_json, errors in OpenAI's {"error":{message,type,code,param}} shape.
package openai

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/internal/upstream"
)

// DefaultBaseURL is OpenAI's API root.
const DefaultBaseURL = "https://api.openai.com/v1"

// Config configures one upstream model.
type Config struct {
	APIKey  string // OPENAI_API_KEY
	BaseURL string // default DefaultBaseURL
	Model   string // upstream model, e.g. gpt-image-1
	// Organization and Project are sent as OpenAI-Organization and
	// OpenAI-Project when set.
	Organization, Project string
	// API makes the API calls; default upstream.DefaultAPI(). HTTPClient
	// fetches images the API answers with by URL (dall-e's url format);
	// default upstream.Client(). The request context bounds every call.
	API        *upstream.API
	HTTPClient *http.Client
	// Price is the cost of one image (from the catalog); nil means 0.
	Price func(width, height int, tier string) float64
	// TokenPrices, when set, price a response that reports token usage
	// (the GPT image models) from that usage instead of Price.
	TokenPrices *providers.TokenPrices
	Now         func() time.Time // for Retry-After dates; default time.Now
}

// Client calls one OpenAI image model.
type Client struct {
	cfg    Config
	header [][2]string // sent with every call
}

var _ providers.Provider = (*Client)(nil)

// New returns a client for cfg.Model.
func New(cfg Config) *Client {
	upstream.Defaults(&cfg.BaseURL, DefaultBaseURL, &cfg.HTTPClient, &cfg.Now)
	if cfg.API == nil {
		cfg.API = upstream.DefaultAPI()
	}
	c := &Client{cfg: cfg, header: [][2]string{{"Authorization", "Bearer " + cfg.APIKey}}}
	if cfg.Organization != "" {
		c.header = append(c.header, [2]string{"OpenAI-Organization", cfg.Organization})
	}
	if cfg.Project != "" {
		c.header = append(c.header, [2]string{"OpenAI-Project", cfg.Project})
	}
	return c
}

// Name is "openai".
func (c *Client) Name() string { return "openai" }

type generateBody struct {
	Model        string `json:"model"`
	Prompt       string `json:"prompt"`
	N            int    `json:"n,omitempty"`
	Size         string `json:"size,omitempty"`
	Quality      string `json:"quality,omitempty"`
	OutputFormat string `json:"output_format,omitempty"`
	// OutputCompression is sent for jpeg and webp only (the API refuses
	// it with png).
	OutputCompression *int   `json:"output_compression,omitempty"`
	ResponseFormat    string `json:"response_format,omitempty"`
	User              string `json:"user,omitempty"`
	Background        string `json:"background,omitempty"`
	Moderation        string `json:"moderation,omitempty"`
	Style             string `json:"style,omitempty"`
}

type errorResponse struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
		Param   *string `json:"param"`
	} `json:"error"`
}

// Generate calls /images/generations, or /images/edits when req.Mode is
// "edit" with references. Errors are *providers.Error: content_policy for
// content_policy_violation / moderation_blocked, auth for 401/403 and
// insufficient_quota, rate_limited with Retry-After for other 429s,
// unavailable for 5xx, timeout when the deadline passes.
func (c *Client) Generate(ctx context.Context, req providers.Request) (providers.Result, error) {
	var (
		call upstream.Call
		err  error
	)
	if req.Mode == "edit" && len(req.References) > 0 {
		call, err = c.editCall(req)
	} else {
		call, err = c.generateCall(req)
	}
	if err != nil {
		return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindBadRequest, Status: 400, Message: err.Error()}
	}
	call.Method, call.Header = http.MethodPost, c.header
	start := c.cfg.Now()
	resp, err := c.cfg.API.Do(ctx, c.Name(), call)
	if err != nil {
		return providers.Result{}, err
	}
	defer resp.Release()
	body := resp.Body()
	if resp.Status() != http.StatusOK {
		return providers.Result{}, c.apiError(resp.Status(), resp.Headers(), body, req)
	}
	res := providers.Result{Latency: c.cfg.Now().Sub(start)}
	if res.Images, res.Usage, err = c.images(ctx, body); err != nil {
		return providers.Result{}, err
	}
	if len(res.Images) == 0 {
		return providers.Result{}, &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: "response has no images"}
	}
	if c.gptImage() && compression(req) != nil {
		for i := range res.Images { // told the quality: no encoding again when in the asked format
			res.Images[i].Compressed = res.Images[i].MIME == "image/"+outputFormat(req.OutputFormat)
		}
	}
	switch {
	case res.Usage != nil && c.cfg.TokenPrices != nil:
		res.CostUSD, res.CostSource = c.cfg.TokenPrices.Cost(*res.Usage), providers.CostUsage
	case c.cfg.Price != nil:
		res.CostUSD, res.CostSource = c.cfg.Price(req.Width, req.Height, req.Quality)*float64(len(res.Images)), providers.CostCatalog
	}
	return res, nil
}

// usageJSON is the usage member of an Images API response. Two shapes are
// seen from the GPT image models: with output_tokens_details (gpt-image-2
// reports the text tokens it reasons with apart from the image tokens) and
// without it (every output token is an image token). Input tokens without
// their details are counted as text, the cheaper rate.
type usageJSON struct {
	InputTokens        int64         `json:"input_tokens"`
	InputTokensDetails *tokenDetails `json:"input_tokens_details"`
	OutputTokens       int64         `json:"output_tokens"`
	OutputTokensDetail *tokenDetails `json:"output_tokens_details"`
}

type tokenDetails struct {
	ImageTokens int64 `json:"image_tokens"`
	TextTokens  int64 `json:"text_tokens"`
}

func (u usageJSON) usage() *providers.Usage {
	out := &providers.Usage{InputTextTokens: u.InputTokens, OutputImageTokens: u.OutputTokens}
	if d := u.InputTokensDetails; d != nil {
		out.InputTextTokens, out.InputImageTokens = d.TextTokens, d.ImageTokens
	}
	if d := u.OutputTokensDetail; d != nil {
		out.OutputImageTokens, out.OutputTextTokens = d.ImageTokens, d.TextTokens
	}
	return out
}

// images reads the images of a 200 response, {"created":..., "data":
// [{"b64_json": ...} or {"url": ...}], ...}: base64 is decoded straight
// from the body (upstream.Scanner), URLs are fetched.
func (c *Client) images(ctx context.Context, body []byte) ([]providers.Image, *providers.Usage, error) {
	bad := func(what string, err error) error {
		return &providers.Error{Provider: c.Name(), Kind: providers.KindUnavailable, Status: 502, Message: what + ": " + err.Error()}
	}
	type fetch struct {
		i   int
		url string
	}
	var (
		imgs    []providers.Image
		fetches []fetch
		usage   *providers.Usage
	)
	s := upstream.NewScanner(body)
	err := s.Object(func(key []byte) error {
		if string(key) == "usage" && !s.Null() {
			raw, err := s.Raw()
			var u usageJSON
			if err == nil {
				err = json.Unmarshal(raw, &u)
			}
			if err != nil {
				return bad("decode usage", err)
			}
			usage = u.usage()
			return nil
		}
		if string(key) != "data" {
			return s.Skip()
		}
		imgs, fetches = imgs[:0], fetches[:0] // a repeated key replaces, as in encoding/json
		return s.Array(func() error {
			var (
				im, url []byte
				imRaw   bool
			)
			err := s.Object(func(key []byte) error {
				var err error
				switch string(key) {
				case "b64_json":
					im, imRaw, err = s.String()
				case "url":
					url, _, err = s.String()
				default:
					err = s.Skip()
				}
				return err
			})
			if err != nil {
				return err
			}
			switch {
			case len(im) > 0:
				img, err := upstream.DecodeImageJSON(im, imRaw)
				if err != nil {
					return bad("decode b64_json", err)
				}
				imgs = append(imgs, img)
			case len(url) > 0:
				fetches = append(fetches, fetch{len(imgs), string(url)})
				imgs = append(imgs, providers.Image{}) // fetched below
			}
			return nil
		})
	})
	if err == nil {
		err = s.End()
	}
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) {
			return nil, nil, err
		}
		return nil, nil, bad("decode response", err)
	}
	for _, f := range fetches {
		b, err := upstream.Fetch(ctx, c.cfg.HTTPClient, c.Name(), f.url)
		if err != nil {
			return nil, nil, err
		}
		imgs[f.i] = providers.Image{Bytes: b, MIME: upstream.MIME(b)}
	}
	return imgs, usage, nil
}

func (c *Client) generateCall(req providers.Request) (upstream.Call, error) {
	body := generateBody{
		Model:   c.cfg.Model,
		Prompt:  req.Prompt,
		N:       max(req.N, 1),
		Size:    size(req),
		Quality: c.quality(req.Quality),
	}
	body.User = req.User
	switch {
	case c.gptImage():
		body.OutputFormat = outputFormat(req.OutputFormat)
		body.OutputCompression = compression(req)
		body.Background, body.Moderation = req.Background, req.Moderation
	case c.cfg.Model == "dall-e-3":
		body.Style = req.Style
	}
	if !c.gptImage() {
		body.ResponseFormat = "b64_json" // dall-e defaults to url; the GPT image models always answer b64_json
	}
	b, err := json.Marshal(body)
	if err != nil {
		return upstream.Call{}, err
	}
	return upstream.Call{URL: c.cfg.BaseURL + "/images/generations", ContentType: "application/json", Body: b}, nil
}

func (c *Client) editCall(req providers.Request) (upstream.Call, error) {
	f := upstream.NewForm()
	f.Field("model", c.cfg.Model)
	f.Field("prompt", req.Prompt)
	f.Field("n", strconv.Itoa(max(req.N, 1)))
	if s := size(req); s != "" {
		f.Field("size", s)
	}
	if q := c.quality(req.Quality); q != "" {
		f.Field("quality", q)
	}
	if req.User != "" {
		f.Field("user", req.User)
	}
	if c.gptImage() {
		if of := outputFormat(req.OutputFormat); of != "" {
			f.Field("output_format", of)
		}
		if oc := compression(req); oc != nil {
			f.Field("output_compression", strconv.Itoa(*oc))
		}
		for _, kv := range [][2]string{{"background", req.Background}, {"input_fidelity", req.InputFidelity}} {
			if kv[1] != "" {
				f.Field(kv[0], kv[1])
			}
		}
	} else {
		f.Field("response_format", "b64_json")
	}
	field := "image"
	if len(req.References) > 1 {
		field = "image[]" // the GPT image models take several input images
	}
	for i, ref := range req.References {
		mime := upstream.MIME(ref)
		f.File(field, fmt.Sprintf("image-%d.%s", i, strings.TrimPrefix(mime, "image/")), mime, ref)
	}
	if len(req.Mask) > 0 {
		f.File("mask", "mask.png", upstream.MIME(req.Mask), req.Mask)
	}
	body, contentType, err := f.Close()
	if err != nil {
		return upstream.Call{}, err
	}
	return upstream.Call{URL: c.cfg.BaseURL + "/images/edits", ContentType: contentType, Body: body.Bytes()}, nil
}

// apiError maps an OpenAI error response to req to a *providers.Error.
func (c *Client) apiError(status int, header http.Header, body []byte, req providers.Request) error {
	var er errorResponse
	_ = json.Unmarshal(body, &er) // a non-JSON body (a proxy's HTML page) still maps by status
	code := ""
	if er.Error.Code != nil {
		code = *er.Error.Code
	}
	msg := er.Error.Message
	if msg == "" {
		msg = upstream.Truncate(string(body), 200)
	}
	if code != "" {
		msg = code + ": " + msg
	}
	e := &providers.Error{Provider: c.Name(), Kind: upstream.KindForStatus(status), Status: status, Message: msg}
	switch {
	case code == "content_policy_violation" || code == "moderation_blocked" ||
		(status == 400 && strings.Contains(strings.ToLower(er.Error.Message), "safety system")):
		e.Kind, e.Reason = providers.KindContentPolicy, cmp.Or(code, "safety_system")
	case code == "insufficient_quota" || code == "billing_hard_limit_reached":
		e.Kind = providers.KindAuth // no retry will help until billing changes
	case status == http.StatusBadRequest && c.beyondLimits(req, er.Error.Param):
		e.Kind = providers.KindUnsupported // another model may do it
	case e.Kind == providers.KindRateLimited:
		e.RetryAfter = upstream.RetryAfter(header, c.cfg.Now())
	}
	return e
}

func (c *Client) gptImage() bool { return strings.HasPrefix(c.cfg.Model, "gpt-image") }

// beyondLimits says whether a 400 refuses what this model cannot do rather
// than the request itself: the error names the n parameter, or the model
// is dall-e-3 and more than one image was asked for ("For dall-e-3, only
// n=1 is supported", the n parameter of OpenAI's Images API reference).
func (c *Client) beyondLimits(req providers.Request, param *string) bool {
	if param != nil && *param == "n" {
		return true
	}
	return c.cfg.Model == "dall-e-3" && req.N > 1
}

// quality maps routelab's tier to the model's quality parameter.
func (c *Client) quality(tier string) string {
	switch {
	case c.gptImage():
		switch tier {
		case "draft":
			return "low"
		case "premium":
			return "high"
		case "standard":
			return "medium"
		}
	case c.cfg.Model == "dall-e-3":
		if tier == "premium" {
			return "hd"
		}
		return "standard"
	}
	return ""
}

func size(req providers.Request) string {
	if req.Width <= 0 || req.Height <= 0 {
		return ""
	}
	return fmt.Sprintf("%dx%d", req.Width, req.Height)
}

// compression is req's output_compression when the API takes it: a lossy
// output format.
func compression(req providers.Request) *int {
	if f := outputFormat(req.OutputFormat); f != "jpeg" && f != "webp" {
		return nil
	}
	return req.OutputCompression
}

func outputFormat(f string) string {
	switch f {
	case "png", "webp":
		return f
	case "jpeg", "jpg":
		return "jpeg"
	}
	return ""
}
