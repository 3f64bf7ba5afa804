package server

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"log/slog"
	"mime/multipart"
	"os"
	"path/filepath"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// The fuzz targets below feed outside bytes to every decoder of a request
// body: the native and OpenAI JSON bodies, multipart forms, base64
// references and reference images. Whatever the bytes, a decoder must not
// panic, and must refuse with a 4xx *Error: a 500 for a client's bytes is a
// bug (and one the tenant can trigger at will). Seeds are the shapes the
// API documents; `make fuzz` runs each for longer.

// fuzzApp parses requests the way server.New's app does.
var fuzzApp = fiber.New(fiber.Config{DisablePreParseMultipartForm: true})

func fuzzHandlers() *handlers { return &handlers{cfg: Config{}.withDefaults()} }

// withCtx runs fn with a fiber.Ctx holding a request with body and content type ct.
func withCtx(ct string, body []byte, fn func(c *fiber.Ctx)) {
	rc := &fasthttp.RequestCtx{}
	rc.Request.Header.SetMethod(fiber.MethodPost)
	rc.Request.Header.SetContentType(ct)
	rc.Request.SetBody(body)
	c := fuzzApp.AcquireCtx(rc)
	defer fuzzApp.ReleaseCtx(c)
	fn(c)
}

// checkClientError fails unless err is nil or a 4xx *Error.
func checkClientError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 {
		t.Fatalf("%s: error %v (%T), want a 4xx *Error", what, err, err)
	}
}

// checkRequest validates a decoded request and decodes its inline
// references, as the handlers do next.
func checkRequest(t *testing.T, h *handlers, r *imageRequest) {
	t.Helper()
	j, err := h.validate(r, Key{Tenant: "acme"}, "req-1")
	checkClientError(t, "validate", err)
	if err != nil {
		return
	}
	for _, ref := range j.refs {
		if ref.URL != "" {
			continue // fetching is I/O, not decoding
		}
		b, err := ref.raw("references", h.cfg.MaxRefBytes)
		checkClientError(t, "reference", err)
		if err == nil && ref.Bytes == nil && len(b) > h.cfg.MaxRefBytes+3 {
			t.Fatalf("reference decoded to %d bytes, limit %d", len(b), h.cfg.MaxRefBytes)
		}
	}
}

var jsonSeeds = []string{
	`{"prompt":"a fox","n":2,"size":"1024x1024","quality":"premium"}`,
	`{"prompt":"poster","aspect_ratio":"16:9","output_format":"webp","response_format":"b64_json"}`,
	`{"prompt":"edit","mode":"edit","references":["aGVsbG8=",{"b64_json":"aGk="},{"url":"https://example.com/a.png"}]}`,
	`{"prompt":"data","references":["data:image/png;base64,iVBORw0KGgo="]}`,
	`{"prompt":"x","constraints":{"text_heavy":true,"max_latency_ms":8000,"max_cost_usd":0.25}}`,
	`{"prompt":"x","model":"auto","user":"u-1","parent_id":"req_1"}`,
	`{"prompt":"x","n":1e3,"size":"99999x1"}`, `{"prompt":"\ud800"}`, `{}`, `[]`, `null`, ``,
}

func FuzzNativeJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	h := fuzzHandlers()
	f.Fuzz(func(t *testing.T, body []byte) {
		withCtx(fiber.MIMEApplicationJSON, body, func(c *fiber.Ctx) {
			r, err := h.parseNative(c)
			checkClientError(t, "parseNative", err)
			if err == nil {
				checkRequest(t, h, r)
			}
		})
	})
}

func FuzzOpenAIJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"model":"gpt-image-1","prompt":"a fox","n":1,"size":"1024x1536","quality":"high","response_format":"url","output_format":"png","user":"u"}`))
	h := fuzzHandlers()
	f.Fuzz(func(t *testing.T, body []byte) {
		withCtx(fiber.MIMEApplicationJSON, body, func(c *fiber.Ctx) {
			r, err := parseOpenAIGenerate(c)
			checkClientError(t, "parseOpenAIGenerate", err)
			if err == nil {
				checkRequest(t, h, r)
			}
		})
	})
}

// multipartSeed is a form with the given fields and files.
func multipartSeed(fields map[string]string, files map[string][]byte) (boundary string, body []byte) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	for k, v := range files {
		fw, _ := w.CreateFormFile(k, k+".png")
		_, _ = fw.Write(v)
	}
	_ = w.Close()
	return w.Boundary(), buf.Bytes()
}

func FuzzMultipart(f *testing.F) {
	png := tinyPNG(4, 4)
	for _, seed := range []struct {
		fields map[string]string
		files  map[string][]byte
	}{
		{map[string]string{"prompt": "a fox", "n": "2", "size": "1024x1024"}, nil},
		{map[string]string{"prompt": "edit", "mode": "edit", "constraints": `{"text_heavy":true}`, "references[]": "aGVsbG8="}, map[string][]byte{"image": png}},
		{map[string]string{"prompt": "mask"}, map[string][]byte{"image[]": png, "mask": png}},
	} {
		boundary, body := multipartSeed(seed.fields, seed.files)
		f.Add(boundary, body)
	}
	f.Add("b", []byte("--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx\r\n--b--\r\n"))
	f.Add("", []byte("--\r\n"))
	h := fuzzHandlers()
	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		ct := "multipart/form-data; boundary=" + boundary
		for _, openai := range []bool{false, true} {
			withCtx(ct, body, func(c *fiber.Ctx) {
				var (
					r   *imageRequest
					err error
				)
				if openai {
					r, err = h.parseOpenAIEdit(c)
				} else {
					r, err = h.parseNative(c)
				}
				checkClientError(t, "parse multipart", err)
				if err == nil {
					checkRequest(t, h, r)
				}
			})
		}
	})
}

func FuzzBase64Reference(f *testing.F) {
	for _, s := range []string{"aGVsbG8=", "aGVsbG8", "data:image/png;base64,iVBORw0KGgo=", "data:image/png,raw", "data:;base64,", "", "====", "a\nb", "https://x/y.png"} {
		f.Add(s)
	}
	const limit = 1 << 10
	f.Fuzz(func(t *testing.T, s string) {
		b, err := refInput{B64: s}.raw("references", limit)
		checkClientError(t, "raw", err)
		if err == nil && len(b) > limit+3 {
			t.Fatalf("raw(%q) = %d bytes, limit %d", s, len(b), limit)
		}
		// The same text as a JSON reference (string or object).
		var r refInput
		checkClientError(t, "UnmarshalJSON", unmarshalRef(&r, s))
	})
}

// unmarshalRef decodes s as the JSON value of one reference.
func unmarshalRef(r *refInput, s string) error {
	err := r.UnmarshalJSON([]byte(s))
	var fe *fieldError
	if errors.As(err, &fe) {
		return fe.err
	}
	return err
}

func FuzzReferenceImage(f *testing.F) {
	f.Add(tinyPNG(3, 5))
	f.Add(tinyJPEG(8, 8))
	if files, _ := filepath.Glob("../evaluator/qa/testdata/*.webp"); len(files) > 0 {
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	const maxPixels, maxSide = 1 << 16, 64
	cfg := Config{}.withDefaults()
	cfg.MaxRefPixels, cfg.RefMaxSide = maxPixels, maxSide
	l := newRefLoader(cfg, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, _, err := l.normalise(context.Background(), raw, "references", 0)
		checkClientError(t, "normalise", err)
		if err != nil {
			return
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("normalised reference is not a PNG: %v", err)
		}
		if cfg.Width > maxSide || cfg.Height > maxSide {
			t.Fatalf("normalised reference is %dx%d, max side %d", cfg.Width, cfg.Height, maxSide)
		}
	})
}

func tinyPNG(w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 37)
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

func tinyJPEG(w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = color.Gray{Y: byte(i * 29)}.Y
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 50})
	return buf.Bytes()
}
