package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/router"
)

// Validation codes, one per class of bad input.
const (
	CodePromptEmpty       = "prompt_empty"
	CodePromptTooLong     = "prompt_too_long"
	CodeInvalidMode       = "invalid_mode"
	CodeInvalidN          = "invalid_n"
	CodeInvalidSize       = "invalid_size"
	CodeInvalidQuality    = "invalid_quality"
	CodeInvalidFormat     = "invalid_output_format"
	CodeInvalidRespFormat = "invalid_response_format"
	CodeInvalidBase64     = "reference_invalid_base64"
	CodeParentNotFound    = "parent_not_found"
)

// decodeJSON reads a JSON body into v: 415 unless the body says it is JSON,
// 400 invalid_json for syntax or type errors, naming the field when known.
func decodeJSON(c *fiber.Ctx, v any) error {
	if !isJSON(c) {
		return &Error{Status: fiber.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia, Message: "Content-Type must be application/json"}
	}
	return unmarshal(c.Body(), v)
}

func unmarshal(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &Error{Status: fiber.StatusBadRequest, Code: CodeInvalidJSON, Message: "empty body"}
	}
	// goccy/go-json decodes as encoding/json does, in a fraction of the
	// time; its type errors are its own type, with the same fields.
	if err := gojson.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &Error{Status: fiber.StatusBadRequest, Code: CodeInvalidJSON, Field: te.Field, Message: fmt.Sprintf("%s must be %s", te.Field, te.Type)}
		}
		var gte *gojson.UnmarshalTypeError
		if errors.As(err, &gte) {
			return &Error{Status: fiber.StatusBadRequest, Code: CodeInvalidJSON, Field: gte.Field, Message: fmt.Sprintf("%s must be %s", gte.Field, gte.Type)}
		}
		var fe *fieldError
		if errors.As(err, &fe) {
			return fe.err
		}
		return &Error{Status: fiber.StatusBadRequest, Code: CodeInvalidJSON, Message: "malformed JSON: " + err.Error()}
	}
	return nil
}

// fieldError carries a validation *Error out of a custom UnmarshalJSON.
type fieldError struct{ err *Error }

func (f *fieldError) Error() string { return f.err.Error() }

func mediaType(c *fiber.Ctx) string {
	ct := c.Get(fiber.HeaderContentType)
	if plainMediaType(ct) {
		return ct // what ParseMediaType returns, without its allocations
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

// plainMediaType reports whether ct is a lower-case type/subtype with no
// parameters, the common "application/json", which needs no parsing.
func plainMediaType(ct string) bool {
	slash := strings.IndexByte(ct, '/')
	if slash <= 0 || slash == len(ct)-1 {
		return false
	}
	for i := 0; i < len(ct); i++ {
		switch b := ct[i]; {
		case b >= 'a' && b <= 'z', b >= '0' && b <= '9', b == '.', b == '+', b == '-':
		case b == '/' && i == slash:
		default:
			return false
		}
	}
	return true
}

func isJSON(c *fiber.Ctx) bool {
	mt := mediaType(c)
	return mt == fiber.MIMEApplicationJSON || strings.HasSuffix(mt, "+json")
}

func isMultipart(c *fiber.Ctx) bool { return mediaType(c) == fiber.MIMEMultipartForm }

// refInput is one reference image as sent: a URL, base64 (optionally a
// data: URI) or uploaded bytes. In JSON it is a string or an object with
// url / image_url / b64_json.
type refInput struct {
	URL   string
	B64   string
	Bytes []byte
}

func (r *refInput) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
			r.URL = s
		} else {
			r.B64 = s
		}
		return nil
	}
	var o struct {
		URL      string `json:"url"`
		ImageURL string `json:"image_url"`
		B64      string `json:"b64_json"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return &fieldError{errField(CodeInvalidJSON, "references", "a reference is a URL or base64 string, or an object with url or b64_json")}
	}
	r.URL, r.B64 = o.URL, o.B64
	if r.URL == "" {
		r.URL = o.ImageURL
	}
	if r.URL == "" && r.B64 == "" {
		return &fieldError{errField(CodeInvalidJSON, "references", "a reference object needs url or b64_json")}
	}
	return nil
}

// raw returns the reference bytes when they came inline.
func (r refInput) raw(field string, maxBytes int) ([]byte, error) {
	if r.Bytes != nil {
		return r.Bytes, nil
	}
	s := r.B64
	if strings.HasPrefix(s, "data:") {
		i := strings.Index(s, ",")
		if i < 0 || !strings.Contains(s[:i], ";base64") {
			return nil, errField(CodeInvalidBase64, field, "data URI must be base64")
		}
		s = s[i+1:]
	}
	if base64.StdEncoding.DecodedLen(len(s)) > maxBytes+3 {
		return nil, &Error{Status: fiber.StatusRequestEntityTooLarge, Code: CodeReferenceTooLarge, Field: field, Message: fmt.Sprintf("reference larger than %d bytes", maxBytes)}
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, errField(CodeInvalidBase64, field, "reference is not valid base64")
		}
	}
	return b, nil
}

// imageRequest is the native body of POST /v1/images (JSON, or the same
// names as multipart form fields).
type imageRequest struct {
	Prompt       string     `json:"prompt"`
	Mode         string     `json:"mode"`
	References   []refInput `json:"references"`
	N            int        `json:"n"`
	Size         string     `json:"size"`
	AspectRatio  string     `json:"aspect_ratio"`
	OutputFormat string     `json:"output_format"`
	// OutputCompression is the JPEG/WebP quality, 0-100 (nil: not given).
	OutputCompression *int               `json:"output_compression"`
	Quality           string             `json:"quality"`
	Constraints       router.Constraints `json:"constraints"`
	Model             string             `json:"model"`
	User              string             `json:"user"`
	ParentID          string             `json:"parent_id"`
	ResponseFormat    string             `json:"response_format"`
	// Fit: how a vendor image of another aspect becomes the size asked
	// for: crop (default), pad or native (convert.go).
	Fit string `json:"fit"`
	// OpenAI Images options (options.go).
	Background    string `json:"background"`
	Moderation    string `json:"moderation"`
	InputFidelity string `json:"input_fidelity"`
	Style         string `json:"style"`

	mask []byte // OpenAI edits only
	// Stream and PartialImages: OpenAI's streaming (stream.go); only the
	// OpenAI-shaped routes set openaiEvents, the event type prefix.
	Stream        bool `json:"-"`
	PartialImages *int `json:"-"`
	openaiEvents  string
}

// job is a validated image request, ready to serve.
type job struct {
	id             string
	tenant         string
	unit           string
	mode           router.Mode
	prompt         string
	refs           []refInput
	mask           []byte
	n              int
	width, height  int
	format         string
	compression    int // output_compression 0-100, -1 = not given
	tier           router.Tier
	constraints    router.Constraints
	pin            string
	parentID       string
	responseFormat string
	fit            string // crop | pad | native
	opts           options
	stream         string // event type prefix when streaming ("image_generation", "image_edit"); "" = not streaming
	partialImages  int
}

// validate checks everything that can be checked without I/O and builds the
// job. References are loaded later (they may need fetching).
func (h *handlers) validate(r *imageRequest, k Key, id string) (*job, error) {
	j := &job{id: id, tenant: k.Tenant, n: r.N, mask: r.mask, refs: r.References, parentID: strings.TrimSpace(r.ParentID)}
	j.prompt = strings.TrimSpace(r.Prompt)
	switch {
	case j.prompt == "":
		return nil, errField(CodePromptEmpty, "prompt", "prompt is required")
	case !utf8.ValidString(j.prompt):
		return nil, errField(CodeInvalidField, "prompt", "prompt is not valid UTF-8")
	case utf8.RuneCountInString(j.prompt) > h.cfg.MaxPromptRunes:
		return nil, errField(CodePromptTooLong, "prompt", fmt.Sprintf("prompt longer than %d characters", h.cfg.MaxPromptRunes))
	}
	switch strings.ToLower(r.Mode) {
	case "", "generate":
		j.mode = router.ModeGenerate
		if r.Mode == "" && (len(r.References) > 0 || j.parentID != "") {
			j.mode = router.ModeEdit
		}
	case "edit":
		j.mode = router.ModeEdit
	default:
		return nil, errField(CodeInvalidMode, "mode", "mode must be generate or edit")
	}
	if j.n == 0 {
		j.n = 1
	}
	if j.n < 1 || j.n > h.cfg.MaxN {
		return nil, errField(CodeInvalidN, "n", fmt.Sprintf("n must be between 1 and %d", h.cfg.MaxN))
	}
	var err error
	if j.width, j.height, err = parseSize(r.Size, r.AspectRatio); err != nil {
		return nil, err
	}
	if err := h.fitSize(j, r); err != nil {
		return nil, err
	}
	if j.tier, err = parseQuality(r.Quality); err != nil {
		return nil, err
	}
	switch f := strings.ToLower(r.OutputFormat); f {
	case "", "png":
		j.format = "png"
	case "jpeg", "jpg":
		j.format = "jpeg"
	case "webp":
		j.format = "webp"
	default:
		return nil, errField(CodeInvalidFormat, "output_format", "output_format must be png, jpeg or webp")
	}
	j.compression = -1
	if c := r.OutputCompression; c != nil {
		if *c < 0 || *c > 100 {
			return nil, errField(CodeInvalidField, "output_compression", "output_compression must be between 0 and 100")
		}
		j.compression = *c
	}
	switch f := strings.ToLower(r.ResponseFormat); f {
	case "", "b64_json":
		j.responseFormat = "b64_json"
	case "url":
		if len(h.cfg.URLSecret) == 0 {
			return nil, errField(CodeInvalidRespFormat, "response_format", "url responses are not enabled on this server")
		}
		j.responseFormat = "url"
	default:
		return nil, errField(CodeInvalidRespFormat, "response_format", "response_format must be b64_json or url")
	}
	switch f := strings.ToLower(strings.TrimSpace(r.Fit)); f {
	case "", FitCrop:
		j.fit = FitCrop
	case FitPad, FitNative:
		j.fit = f
	default:
		return nil, errField(CodeInvalidField, "fit", "fit must be crop, pad or native")
	}
	if err := validateStream(r, j); err != nil {
		return nil, err
	}
	if m := strings.TrimSpace(r.Model); m != "" && m != "auto" {
		if _, ok := h.catalog[m]; !ok {
			return nil, errField(CodeUnknownModel, "model", fmt.Sprintf("unknown model %q; GET /v1/models lists them", m))
		}
		j.pin = m
	}
	c := r.Constraints
	if c.MaxLatencyMS < 0 || c.MaxCostUSD < 0 || math.IsNaN(c.MaxCostUSD) || math.IsInf(c.MaxCostUSD, 0) {
		return nil, errField(CodeInvalidField, "constraints", "limits must be non-negative numbers")
	}
	j.constraints = c
	if len(r.User) > 256 {
		return nil, errField(CodeInvalidField, "user", "user longer than 256 bytes")
	}
	j.unit = r.User
	if j.unit == "" {
		j.unit = k.Tenant
	}
	if len(j.refs) > h.cfg.MaxRefs {
		return nil, errField(CodeReferenceTooMany, "references", fmt.Sprintf("at most %d references", h.cfg.MaxRefs))
	}
	if j.mode == router.ModeEdit && len(j.refs) == 0 && j.parentID == "" {
		return nil, errField(CodeEditNeedsImage, "references", "edit needs an image: references or parent_id")
	}
	if err := h.validateOptions(r, j); err != nil {
		return nil, err
	}
	if err := h.validateCount(j); err != nil {
		return nil, err
	}
	return j, nil
}

// parseSize reads "WxH" (or "auto"/"") and an optional aspect ratio "W:H".
func parseSize(size, aspect string) (int, int, error) {
	size = strings.ToLower(strings.TrimSpace(size))
	if size != "" && size != "auto" {
		ws, hs, ok := strings.Cut(size, "x")
		w, err1 := strconv.Atoi(ws)
		h, err2 := strconv.Atoi(hs)
		if !ok || err1 != nil || err2 != nil || w < 64 || h < 64 || w > 4096 || h > 4096 {
			return 0, 0, errField(CodeInvalidSize, "size", "size must be WIDTHxHEIGHT with sides from 64 to 4096, or auto")
		}
		return w, h, nil
	}
	if aspect == "" {
		return 1024, 1024, nil
	}
	as, bs, ok := strings.Cut(aspect, ":")
	a, err1 := strconv.ParseFloat(as, 64)
	b, err2 := strconv.ParseFloat(bs, 64)
	if !ok || err1 != nil || err2 != nil || a <= 0 || b <= 0 || a/b > 4 || b/a > 4 {
		return 0, 0, errField(CodeInvalidSize, "aspect_ratio", "aspect_ratio must be W:H between 1:4 and 4:1")
	}
	// About one megapixel, sides rounded to multiples of 64.
	r := a / b
	h := math.Sqrt(1024 * 1024 / r)
	w := h * r
	round := func(x float64) int { return max(64, int(math.Round(x/64))*64) }
	return round(w), round(h), nil
}

func parseQuality(q string) (router.Tier, error) {
	switch strings.ToLower(strings.TrimSpace(q)) {
	case "draft", "low":
		return router.TierDraft, nil
	case "", "standard", "medium", "auto":
		return router.TierStandard, nil
	case "premium", "high", "hd":
		return router.TierPremium, nil
	}
	return "", errField(CodeInvalidQuality, "quality", "quality must be draft, standard or premium")
}

// fitSize checks an explicit size against the sizes the catalog offers, and
// maps an aspect ratio (or "auto") to the offered size closest in shape.
func (h *handlers) fitSize(j *job, r *imageRequest) error {
	if len(h.sizes) == 0 {
		return nil
	}
	explicit := r.Size != "" && !strings.EqualFold(strings.TrimSpace(r.Size), "auto")
	if explicit {
		for _, s := range h.sizes {
			if s[0] == j.width && s[1] == j.height {
				return nil
			}
		}
		names := make([]string, len(h.sizes))
		for i, s := range h.sizes {
			names[i] = strconv.Itoa(s[0]) + "x" + strconv.Itoa(s[1])
		}
		return errField(CodeInvalidSize, "size", "no model offers "+r.Size+"; sizes: "+strings.Join(names, ", ")+" or auto")
	}
	want := float64(j.width) / float64(j.height)
	best, bestD := h.sizes[0], math.Inf(1)
	for _, s := range h.sizes {
		d := math.Abs(math.Log(float64(s[0])/float64(s[1])/want)) + 1e-9*math.Abs(float64(s[0]*s[1]-j.width*j.height))
		if d < bestD {
			best, bestD = s, d
		}
	}
	j.width, j.height = best[0], best[1]
	return nil
}
