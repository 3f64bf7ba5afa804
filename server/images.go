package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/providers"
)

// imagesResponse is the native response of POST /v1/images.
type imagesResponse struct {
	ID            string           `json:"id"`
	Created       int64            `json:"created"`
	Model         string           `json:"model"`
	Provider      string           `json:"provider"`
	PolicyVersion string           `json:"policy_version"`
	Experiments   []events.Arm     `json:"experiments"`
	Escalated     bool             `json:"escalated"`
	Fallback      bool             `json:"fallback"`
	Reset         bool             `json:"reset"`
	QAPass        bool             `json:"qa_pass"`
	Attempts      []events.Attempt `json:"attempts"`
	LatencyMS     int64            `json:"latency_ms"`
	CostUSD       float64          `json:"cost_usd"`
	// Simulated: the simulator made the images, acting out a model that
	// has no vendor key (or a sim-* model); their cost is the catalog's.
	Simulated bool `json:"simulated"`
	// images are appended by sendImages, base64 written straight into
	// the response buffer.
}

type imageOut struct {
	raw      []byte // inline image, sent as b64_json
	b64      string // raw in base64 when the provider had it (Image.Base64)
	URL      string
	MIMEType string
	Width    int
	Height   int
}

// openaiImagesResponse is OpenAI's ImagesResponse.
type openaiImagesResponse struct {
	Created int64 `json:"created"`
	// data is appended by sendImages.
	OutputFormat string `json:"output_format,omitempty"`
	Size         string `json:"size,omitempty"`
	Quality      string `json:"quality,omitempty"`
}

// openaiGenerateRequest is OpenAI's image generation body; fields routelab
// does not use (style, background, moderation ...) are accepted and ignored.
type openaiGenerateRequest struct {
	Prompt         string `json:"prompt"`
	Model          string `json:"model"`
	N              int    `json:"n"`
	Size           string `json:"size"`
	Quality        string `json:"quality"`
	ResponseFormat string `json:"response_format"`
	OutputFormat   string `json:"output_format"`
	// OutputCompression is honoured by converting (convert.go).
	OutputCompression *int   `json:"output_compression"`
	User              string `json:"user"`
	// Fit is routelab's extension: crop | pad | native (convert.go).
	Fit string `json:"fit"`
	// Passed to vendors that have them (validate checks the values).
	Background    string `json:"background"`
	Moderation    string `json:"moderation"`
	InputFidelity string `json:"input_fidelity"`
	Style         string `json:"style"`
	// Stream answers as Server-Sent Events in OpenAI's shape (stream.go).
	Stream        bool `json:"stream"`
	PartialImages *int `json:"partial_images"`
}

func (h *handlers) imagesNative(c *fiber.Ctx) error {
	return h.imageEndpoint(c, "images", h.parseNative, h.respondNative)
}

func (h *handlers) openaiGenerations(c *fiber.Ctx) error {
	return h.imageEndpoint(c, "generations", parseOpenAIGenerate, h.respondOpenAI)
}

func (h *handlers) openaiEdits(c *fiber.Ctx) error {
	return h.imageEndpoint(c, "edits", h.parseOpenAIEdit, h.respondOpenAI)
}

type responder func(c *fiber.Ctx, j *job, o *gateway.Outcome) error

// imageEndpoint is the flow shared by the image routes: parse, validate,
// idempotency, serve, headers, respond, metrics.
func (h *handlers) imageEndpoint(c *fiber.Ctx, route string, parse func(*fiber.Ctx) (*imageRequest, error), respond responder) (err error) {
	start := time.Now()
	model := ""
	h.m.inFlight.Inc()
	defer func() {
		h.m.inFlight.Dec()
		status := c.Response().StatusCode()
		if err != nil {
			status = toError(err).Status
		}
		h.m.requests.Of(requestLabels{route, model, status}).Inc()
		h.m.latency.Of(route).Observe(time.Since(start).Seconds())
	}()
	r, err := parse(c)
	if err != nil {
		return err
	}
	j, err := h.validate(r, keyOf(c), requestID(c))
	if err != nil {
		return err
	}
	if j.stream != "" {
		if c.Get("Idempotency-Key") != "" {
			return errField(CodeInvalidField, "Idempotency-Key", "Idempotency-Key cannot be replayed as a stream; send it without stream")
		}
		return h.serveStream(c, j)
	}
	if ik := c.Get("Idempotency-Key"); ik != "" {
		return h.idempotent(c, j.tenant+"\x00"+ik, route, func() error { return h.serveAndRespond(c, j, respond, &model) })
	}
	return h.serveAndRespond(c, j, respond, &model)
}

func (h *handlers) serveAndRespond(c *fiber.Ctx, j *job, respond responder, model *string) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), h.cfg.RequestTimeout)
	defer cancel()
	o, err := h.serve(ctx, j)
	if err != nil {
		return err
	}
	*model = o.Model
	c.Set("x-routelab-model", o.Model)
	c.Set("x-routelab-policy", o.Decision.PolicyVersion)
	c.Set("x-routelab-experiment", o.Experiment())
	c.Set("x-routelab-escalated", strconv.FormatBool(o.Escalated))
	c.Set("x-routelab-simulated", strconv.FormatBool(h.simulated(o.Model)))
	return respond(c, j, o)
}

// idempotent runs fn once per key: a repeat with the same body replays the
// stored response, a different body is 409. A store that cannot be reached
// fails open: the request runs, with a logged warning.
func (h *handlers) idempotent(c *fiber.Ctx, key, route string, fn func() error) error {
	sum := requestSum(route, c.Body())
	claim, err := h.idem.Begin(c.UserContext(), key, sum)
	if err != nil {
		if c.UserContext().Err() != nil {
			return c.UserContext().Err()
		}
		h.m.stateFallback.WithLabelValues("idempotency").Inc()
		h.log.Warn("idempotency store unavailable: request runs without its Idempotency-Key", "request_id", requestID(c), "err", err)
		return fn()
	}
	if !claim.Owner {
		if claim.Sum != sum {
			return &Error{Status: fiber.StatusConflict, Code: CodeIdempotencyReuse, Field: "Idempotency-Key", Message: "Idempotency-Key was used with a different request"}
		}
		if claim.Resp == nil {
			return &Error{Status: fiber.StatusConflict, Code: CodeIdempotencyReuse, Field: "Idempotency-Key", Message: "the first request with this Idempotency-Key failed; retry with a new key"}
		}
		resp, err := decodeResponse(claim.Resp)
		if err != nil {
			return fmt.Errorf("replay Idempotency-Key: %w", err)
		}
		c.Status(resp.status)
		c.Set(fiber.HeaderContentType, resp.ctype)
		for _, kv := range resp.headers {
			c.Set(kv[0], kv[1])
		}
		c.Set("x-routelab-idempotent-replay", "true")
		return c.Send(resp.body)
	}
	finish := func(resp []byte) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), 5*time.Second)
		defer cancel()
		if err := h.idem.Finish(ctx, key, claim, resp); err != nil {
			h.m.stateFallback.WithLabelValues("idempotency").Inc()
			h.log.Warn("idempotency store unavailable: response not kept for replays", "request_id", requestID(c), "err", err)
		}
	}
	finished := false
	defer func() {
		// A panic in fn (recovered further up) must not leave the key in
		// flight: later requests with it would wait for it.
		if !finished {
			finish(nil)
		}
	}()
	err = fn()
	if err != nil || c.Response().StatusCode() >= 300 {
		return err
	}
	finished = true
	resp := &savedResponse{status: c.Response().StatusCode(), ctype: string(c.Response().Header.ContentType()), body: c.Response().Body()}
	for _, name := range []string{"x-routelab-request-id", "x-routelab-model", "x-routelab-policy", "x-routelab-experiment", "x-routelab-escalated", "x-routelab-simulated"} {
		resp.headers = append(resp.headers, [2]string{name, string(c.Response().Header.Peek(name))})
	}
	finish(resp.encode())
	return nil
}

func (h *handlers) parseNative(c *fiber.Ctx) (*imageRequest, error) {
	if isMultipart(c) {
		return h.parseMultipart(c, false)
	}
	r := &imageRequest{}
	if err := decodeJSON(c, r); err != nil {
		return nil, err
	}
	return r, nil
}

func parseOpenAIGenerate(c *fiber.Ctx) (*imageRequest, error) {
	var o openaiGenerateRequest
	if err := decodeJSON(c, &o); err != nil {
		return nil, err
	}
	return &imageRequest{Prompt: o.Prompt, Model: o.Model, N: o.N, Size: o.Size, Quality: o.Quality, ResponseFormat: o.ResponseFormat, OutputFormat: o.OutputFormat, OutputCompression: o.OutputCompression, User: o.User, Mode: "generate",
		Stream: o.Stream, PartialImages: o.PartialImages, Fit: o.Fit, openaiEvents: "image_generation",
		Background: o.Background, Moderation: o.Moderation, InputFidelity: o.InputFidelity, Style: o.Style}, nil
}

func (h *handlers) parseOpenAIEdit(c *fiber.Ctx) (*imageRequest, error) {
	if !isMultipart(c) {
		return nil, &Error{Status: fiber.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia, Message: "Content-Type must be multipart/form-data"}
	}
	r, err := h.parseMultipart(c, true)
	if err != nil {
		return nil, err
	}
	r.Mode = "edit"
	r.openaiEvents = "image_edit"
	return r, nil
}

// parseMultipart reads the form fields of the native request (or OpenAI's
// edit form) and the uploaded files: image / image[] / references[] as
// references, mask as the mask.
func (h *handlers) parseMultipart(c *fiber.Ctx, openai bool) (*imageRequest, error) {
	if !strings.Contains(c.Get(fiber.HeaderContentType), "boundary=") {
		return nil, &Error{Status: fiber.StatusBadRequest, Code: "invalid_multipart", Message: "multipart body without a boundary"}
	}
	form, err := c.MultipartForm()
	if err != nil {
		return nil, &Error{Status: fiber.StatusBadRequest, Code: "invalid_multipart", Message: "malformed multipart body"}
	}
	val := func(name string) string {
		if v := form.Value[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	r := &imageRequest{
		Prompt: val("prompt"), Mode: val("mode"), Size: val("size"), AspectRatio: val("aspect_ratio"),
		OutputFormat: val("output_format"), Quality: val("quality"), Model: val("model"), User: val("user"),
		ParentID: val("parent_id"), ResponseFormat: val("response_format"), Fit: val("fit"),
		Background: val("background"), Moderation: val("moderation"), InputFidelity: val("input_fidelity"), Style: val("style"),
	}
	if v := val("output_compression"); v != "" {
		c, err := strconv.Atoi(v)
		if err != nil {
			return nil, errField(CodeInvalidField, "output_compression", "output_compression must be an integer")
		}
		r.OutputCompression = &c
	}
	if v := val("stream"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, errField(CodeInvalidField, "stream", "stream must be true or false")
		}
		r.Stream = b
	}
	if v := val("partial_images"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return nil, errField(CodeInvalidField, "partial_images", "partial_images must be an integer")
		}
		r.PartialImages = &p
	}
	if v := val("n"); v != "" {
		if r.N, err = strconv.Atoi(v); err != nil {
			return nil, errField(CodeInvalidN, "n", "n must be an integer")
		}
	}
	if v := val("constraints"); v != "" {
		if err := json.Unmarshal([]byte(v), &r.Constraints); err != nil {
			return nil, errField(CodeInvalidJSON, "constraints", "constraints must be a JSON object")
		}
	}
	for _, u := range append(form.Value["references"], form.Value["references[]"]...) {
		ref := refInput{}
		if err := ref.UnmarshalJSON(strconv.AppendQuote(nil, u)); err != nil {
			return nil, errField(CodeInvalidField, "references", "bad reference")
		}
		r.References = append(r.References, ref)
	}
	for name, files := range form.File {
		isRef := name == "mask" || strings.HasPrefix(name, "image") || strings.HasPrefix(name, "references")
		if !isRef {
			continue
		}
		for _, fh := range files {
			if len(r.References) >= h.cfg.MaxRefs+1 {
				return nil, errField(CodeReferenceTooMany, "references", "too many references")
			}
			b, err := readFile(fh, h.cfg.MaxRefBytes, name)
			if err != nil {
				return nil, err
			}
			if name == "mask" {
				if sniff(b) != "png" {
					return nil, errField(CodeReferenceFormat, "mask", "mask must be a PNG")
				}
				r.mask = b
				continue
			}
			r.References = append(r.References, refInput{Bytes: b})
		}
	}
	return r, nil
}

func readFile(fh *multipart.FileHeader, maxBytes int, field string) ([]byte, error) {
	if fh.Size > int64(maxBytes) {
		return nil, &Error{Status: fiber.StatusRequestEntityTooLarge, Code: CodeReferenceTooLarge, Field: field, Message: "uploaded image too large"}
	}
	f, err := fh.Open()
	if err != nil {
		return nil, errField("invalid_multipart", field, "unreadable upload")
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(maxBytes)+1))
	if err != nil || len(b) > maxBytes {
		return nil, &Error{Status: fiber.StatusRequestEntityTooLarge, Code: CodeReferenceTooLarge, Field: field, Message: "uploaded image too large"}
	}
	return b, nil
}

func (h *handlers) respondNative(c *fiber.Ctx, j *job, o *gateway.Outcome) error {
	imgs, err := h.images(c, j, o)
	if err != nil {
		return err
	}
	return sendImages(c, imagesResponse{
		ID: o.ID, Created: o.Created.Unix(), Model: o.Model, Provider: o.Provider, PolicyVersion: o.Decision.PolicyVersion,
		Experiments: o.Arms, Escalated: o.Escalated, Fallback: o.Fallback, Reset: o.Reset, QAPass: o.QAPass,
		Attempts: o.Attempts, LatencyMS: o.Latency.Milliseconds(), CostUSD: o.CostUSD, Simulated: h.simulated(o.Model),
	}, "images", imgs, false)
}

// simulated says whether the simulator serves model (the catalog says;
// a model outside it, as in tests without a catalog, is not marked).
func (h *handlers) simulated(model string) bool {
	return h.catalog[model].Simulated
}

func (h *handlers) respondOpenAI(c *fiber.Ctx, j *job, o *gateway.Outcome) error {
	imgs, err := h.images(c, j, o)
	if err != nil {
		return err
	}
	resp := openaiImagesResponse{Created: o.Created.Unix(), OutputFormat: j.format, Size: strconv.Itoa(j.width) + "x" + strconv.Itoa(j.height), Quality: openaiQuality(string(j.tier))}
	if len(imgs) > 0 {
		resp.Size = strconv.Itoa(imgs[0].Width) + "x" + strconv.Itoa(imgs[0].Height) // fit native: the vendor's
	}
	return sendImages(c, resp, "data", imgs, true)
}

func openaiQuality(tier string) string {
	switch tier {
	case "draft":
		return "low"
	case "premium":
		return "high"
	}
	return "medium"
}

// images renders the outcome's images inline or as signed links.
func (h *handlers) images(c *fiber.Ctx, j *job, o *gateway.Outcome) ([]imageOut, error) {
	out := make([]imageOut, len(o.Images))
	base := h.cfg.PublicURL
	if base == "" {
		base = c.BaseURL()
	}
	s := signer{secret: h.cfg.URLSecret, previous: h.cfg.URLSecretPrevious, ttl: h.cfg.URLTTL}
	for i, im := range o.Images {
		out[i] = imageOut{MIMEType: im.MIME}
		im, out[i].MIMEType, out[i].Width, out[i].Height = h.deliverable(j, o.ID, im)
		if j.responseFormat != "url" {
			out[i].raw, out[i].b64 = im.Bytes, im.Base64
			continue
		}
		if h.deps.Blobs == nil {
			return nil, errField(CodeInvalidRespFormat, "response_format", "url responses need a blob store")
		}
		key, err := h.deps.Blobs.Put(c.UserContext(), im.Bytes)
		if err != nil {
			// The image was made (and its events sent); only the link
			// cannot be: a retry may find room, or the client can ask
			// for the image inline.
			h.log.Error("store image for a url response", "err", err, "bytes", len(im.Bytes))
			return nil, &Error{Status: fiber.StatusServiceUnavailable, Code: CodeStorageUnavailable,
				Message: "the image could not be stored for a link; retry later or ask for response_format b64_json", RetryAfter: 30 * time.Second}
		}
		out[i].URL = base + "/v1/images/" + key + "?" + s.link(key, h.deps.Now())
	}
	return out, nil
}

// deliverable is im as the client asked for it: at the requested size
// (unless fit is native) and in the requested format (convert), with its
// MIME type and size.
func (h *handlers) deliverable(j *job, requestID string, im providers.Image) (_ providers.Image, mime string, w, ht int) {
	b, mime, same, err := convert(im.Bytes, j.width, j.height, j.format, j.fit, j.compression, im.Compressed)
	if err != nil {
		// QA decoded these bytes, so this is rare; the client gets
		// them as they are, with their real type.
		h.log.Warn("convert image", "request_id", requestID, "err", err)
		b, mime, same = im.Bytes, im.MIME, true
	}
	if !same {
		im.Base64 = "" // the vendor's base64 is of other bytes
	}
	im.Bytes = b
	w, ht = j.width, j.height
	if j.fit == FitNative {
		if cfg, _, err := qa.DecodeConfig(b, convertPixels); err == nil {
			w, ht = cfg.Width, cfg.Height
		}
	}
	return im, mime, w, ht
}

// imageGet serves an image behind a signed, expiring link.
func (h *handlers) imageGet(c *fiber.Ctx) error {
	id := c.Params("id")
	s := signer{secret: h.cfg.URLSecret, previous: h.cfg.URLSecretPrevious, ttl: h.cfg.URLTTL}
	if !s.valid(id, c.Query("exp"), c.Query("sig"), h.deps.Now()) {
		return &Error{Status: fiber.StatusForbidden, Code: CodeForbidden, Message: "link is invalid or expired"}
	}
	if h.deps.Blobs == nil {
		return &Error{Status: fiber.StatusNotFound, Code: CodeNotFound, Message: "no such image"}
	}
	b, err := h.deps.Blobs.Get(c.UserContext(), id)
	if err != nil {
		return &Error{Status: fiber.StatusNotFound, Code: CodeNotFound, Message: "no such image"}
	}
	c.Set(fiber.HeaderContentType, http.DetectContentType(b))
	c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
	// The bytes come from a provider: never let a browser sniff them into
	// HTML or script, or run anything if it opens the link as a page.
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; sandbox")
	return c.Send(b)
}
