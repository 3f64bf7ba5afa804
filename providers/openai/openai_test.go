package openai_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/openai"
	"github.com/routelab/routelab/providers/sim"
)

var png = sim.Render("a test image", 16, 16, 1, 1)

// fakeOpenAI is an httptest stand-in for the Images API. handle answers
// every request after the auth check; the last request is kept.
type fakeOpenAI struct {
	*httptest.Server
	handle func(w http.ResponseWriter, r *http.Request)
	// What the last request carried, copied inside the handler.
	path, contentType string
	body              []byte
	form              *multipart.Form // multipart requests
}

func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *fakeOpenAI {
	t.Helper()
	f := &fakeOpenAI{handle: handle}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk-test" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"message":"Incorrect API key provided: sk-wrong.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
			return
		}
		f.body, _ = io.ReadAll(r.Body)
		f.path, f.contentType, f.form = r.URL.Path, r.Header.Get("Content-Type"), nil
		if strings.HasPrefix(f.contentType, "multipart/") {
			r.Body = io.NopCloser(bytes.NewReader(f.body))
			if err := r.ParseMultipartForm(1 << 20); err == nil {
				f.form = r.MultipartForm
			}
		}
		f.handle(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func b64Response(w http.ResponseWriter, n int) {
	w.Header().Set("Content-Type", "application/json")
	data := make([]map[string]string, n)
	for i := range data {
		data[i] = map[string]string{"b64_json": base64.StdEncoding.EncodeToString(png)}
	}
	json.NewEncoder(w).Encode(map[string]any{"created": 1713833628, "data": data,
		"usage": map[string]any{"total_tokens": 100, "input_tokens": 50, "output_tokens": 50}})
}

func client(f *fakeOpenAI, model, key string) *openai.Client {
	return openai.New(openai.Config{APIKey: key, BaseURL: f.URL + "/v1", Model: model,
		Price: func(w, h int, tier string) float64 { return 0.04 }})
}

func TestGenerate(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { b64Response(w, 2) })
	res, err := client(f, "gpt-image-1", "sk-test").Generate(context.Background(),
		providers.Request{Prompt: "a red fox", Width: 1024, Height: 1536, N: 2, Quality: "premium", OutputFormat: "png"})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(res.Images) != 2 || !bytes.Equal(res.Images[0].Bytes, png) || res.Images[0].MIME != "image/png" || res.CostUSD != 0.08 {
		t.Fatalf("Generate = %d images, MIME %q, cost %v; want 2 PNGs costing 0.08", len(res.Images), res.Images[0].MIME, res.CostUSD)
	}
	if b64 := res.Images[0].Base64; b64 != "" && b64 != base64.StdEncoding.EncodeToString(png) {
		t.Errorf("Base64 = %.20q..., want empty or b64_json as sent", b64)
	}
	if f.path != "/v1/images/generations" || f.contentType != "application/json" {
		t.Errorf("request %s %s", f.path, f.contentType)
	}
	var got map[string]any
	if err := json.Unmarshal(f.body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"model": "gpt-image-1", "prompt": "a red fox", "n": 2.0, "size": "1024x1536", "quality": "high", "output_format": "png"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("body[%s] = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["response_format"]; ok {
		t.Error("response_format sent to gpt-image-1, which rejects it")
	}
}

func TestGenerateDallE3(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { b64Response(w, 1) })
	if _, err := client(f, "dall-e-3", "sk-test").Generate(context.Background(), providers.Request{Prompt: "x", Quality: "premium"}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(f.body, &got)
	if got["response_format"] != "b64_json" || got["quality"] != "hd" {
		t.Errorf("dall-e-3 body %v, want response_format b64_json and quality hd", got)
	}
}

func TestGenerateURLResponse(t *testing.T) {
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("credentials sent to the image host")
		}
		w.Write(png)
	}))
	defer img.Close()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"created":1,"data":[{"url":"`+img.URL+`/img.png"}]}`)
	})
	res, err := client(f, "dall-e-2", "sk-test").Generate(context.Background(), providers.Request{Prompt: "x"})
	if err != nil || !bytes.Equal(res.Images[0].Bytes, png) {
		t.Fatalf("Generate(url response) = %v, %v; want the fetched PNG", res, err)
	}
}

func TestEdit(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { b64Response(w, 1) })
	ref := sim.Render("ref", 8, 8, 1, 2)
	_, err := client(f, "gpt-image-1", "sk-test").Generate(context.Background(),
		providers.Request{Mode: "edit", Prompt: "add a hat", References: [][]byte{ref, png}, Mask: png, Width: 1024, Height: 1024, Quality: "draft"})
	if err != nil {
		t.Fatalf("Generate(edit): %v", err)
	}
	if f.path != "/v1/images/edits" {
		t.Fatalf("edit went to %s", f.path)
	}
	if f.form == nil {
		t.Fatalf("edit body is not multipart (%s)", f.contentType)
	}
	value := func(k string) string {
		if v := f.form.Value[k]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	if value("model") != "gpt-image-1" || value("prompt") != "add a hat" || value("quality") != "low" || value("size") != "1024x1024" {
		t.Errorf("edit fields %v", f.form.Value)
	}
	imgs := f.form.File["image[]"]
	if len(imgs) != 2 || len(f.form.File["mask"]) != 1 {
		t.Fatalf("edit files: %d image[], %d mask; want 2 and 1", len(imgs), len(f.form.File["mask"]))
	}
	fh, _ := imgs[0].Open()
	got, _ := io.ReadAll(fh)
	if !bytes.Equal(got, ref) || imgs[0].Header.Get("Content-Type") != "image/png" {
		t.Errorf("first image part differs from the reference (type %q)", imgs[0].Header.Get("Content-Type"))
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		key        string
		status     int
		header     map[string]string
		body       string
		wantKind   providers.ErrorKind
		wantStatus int
		wantRetry  time.Duration
	}{
		{"auth", "sk-wrong", 0, nil, "", providers.KindAuth, 401, 0},
		{"rate limited, retry-after-ms", "sk-test", 429, map[string]string{"retry-after-ms": "1500", "retry-after": "2"},
			`{"error":{"message":"Rate limit reached for gpt-image-1 on images per minute (IPM): Limit 5, Used 5.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			providers.KindRateLimited, 429, 1500 * time.Millisecond},
		{"rate limited, retry-after seconds", "sk-test", 429, map[string]string{"retry-after": "3"},
			`{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			providers.KindRateLimited, 429, 3 * time.Second},
		{"quota exhausted is final", "sk-test", 429, nil,
			`{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
			providers.KindAuth, 429, 0},
		{"content policy (dall-e)", "sk-test", 400, nil,
			`{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}`,
			providers.KindContentPolicy, 400, 0},
		{"moderation blocked (gpt-image-1)", "sk-test", 400, nil,
			`{"error":{"message":"Your request was rejected by the safety system.","type":"image_generation_user_error","param":null,"code":"moderation_blocked"}}`,
			providers.KindContentPolicy, 400, 0},
		{"bad request", "sk-test", 400, nil,
			`{"error":{"message":"Invalid value: '999x999'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.","type":"invalid_request_error","param":"size","code":"invalid_value"}}`,
			providers.KindBadRequest, 400, 0},
		{"organization not verified", "sk-test", 403, nil,
			`{"error":{"message":"Your organization must be verified to use the model gpt-image-1.","type":"invalid_request_error","param":null,"code":null}}`,
			providers.KindAuth, 403, 0},
		{"server error", "sk-test", 500, nil,
			`{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`,
			providers.KindUnavailable, 500, 0},
		{"overloaded, HTML body", "sk-test", 503, nil, `<html>503 Service Unavailable</html>`, providers.KindUnavailable, 503, 0},
		{"200 with garbage", "sk-test", 200, nil, `not json`, providers.KindUnavailable, 502, 0},
		{"200 without images", "sk-test", 200, nil, `{"created":1,"data":[]}`, providers.KindUnavailable, 502, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := client(f, "gpt-image-1", tt.key).Generate(context.Background(), providers.Request{Prompt: "x"})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tt.wantKind || pe.Status != tt.wantStatus || pe.RetryAfter != tt.wantRetry || pe.Provider != "openai" {
				t.Fatalf("Generate = %#v, want kind %s status %d retry-after %v", err, tt.wantKind, tt.wantStatus, tt.wantRetry)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		select { // hold the request until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := client(f, "gpt-image-1", "sk-test").Generate(ctx, providers.Request{Prompt: "x"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindTimeout || !pe.Retryable() {
		t.Fatalf("Generate past the deadline = %v, want a retryable timeout", err)
	}
}

func TestUnreachable(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {})
	f.Close()
	_, err := client(f, "gpt-image-1", "sk-test").Generate(context.Background(), providers.Request{Prompt: "x"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindUnavailable {
		t.Fatalf("Generate to a closed server = %v, want unavailable", err)
	}
}

// TestConnectionsReused: calls in flight at once each take a connection;
// when they are done the next wave reuses them instead of dialling again.
// (net/http's default pool keeps 2 idle connections per host: with 8 calls
// in flight, 6 connections were closed and dialled again per wave.)
func TestConnectionsReused(t *testing.T) {
	const inFlight = 8
	var (
		mu      sync.Mutex
		dials   int
		arrived = make(chan struct{}, inFlight)
		release = make(chan struct{})
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		b64Response(w, 1)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			dials++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	f := &fakeOpenAI{Server: srv}
	c := client(f, "gpt-image-1", "sk-test")
	for wave := range 3 {
		errs := make(chan error, inFlight)
		for range inFlight {
			go func() {
				_, err := c.Generate(context.Background(), providers.Request{Prompt: "x"})
				errs <- err
			}()
		}
		for range inFlight { // every call holds its own connection now
			<-arrived
		}
		for range inFlight {
			release <- struct{}{}
		}
		for range inFlight {
			if err := <-errs; err != nil {
				t.Fatalf("wave %d: %v", wave, err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if dials != inFlight {
		t.Errorf("3 waves of %d calls dialled %d connections, want %d (one per call in flight, then reused)", inFlight, dials, inFlight)
	}
}

// TestGenerateResponseShapes: the images are read from every way of
// writing the same response: escaped slashes, members in any order, nulls,
// whitespace, fields routelab ignores.
func TestGenerateResponseShapes(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(png)
	for _, tc := range []struct{ name, body string }{
		{"compact", `{"created":1,"data":[{"b64_json":"` + b64 + `"}]}`},
		{"escaped slashes", `{"created":1,"data":[{"b64_json":"` + strings.ReplaceAll(b64, "/", `\/`) + `"}]}`},
		{"spaced, nulls, extra fields", "{\n  \"data\" : [ { \"url\" : null, \"revised_prompt\": \"a \\\"fox\\\"\", \"b64_json\" : \"" + b64 + "\" } ],\n" +
			`  "usage": {"total_tokens": 100, "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}}, "background": "opaque", "created": 1713833628 }` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tc.body) })
			res, err := client(f, "gpt-image-1", "sk-test").Generate(context.Background(), providers.Request{Prompt: "x"})
			if err != nil || len(res.Images) != 1 || !bytes.Equal(res.Images[0].Bytes, png) || (res.Images[0].Base64 != "" && res.Images[0].Base64 != b64) {
				t.Fatalf("Generate = %+v, %v; want the PNG (and its base64, if kept, as sent)", res, err)
			}
		})
	}
}

// TestCostFromUsage: with token prices, the cost is the vendor's reported
// usage at those prices, in both usage shapes seen from the GPT image
// models (with and without output_tokens_details); without usage it is
// the catalog price per image.
func TestCostFromUsage(t *testing.T) {
	prices := &providers.TokenPrices{TextInput: 5, ImageInput: 8, ImageOutput: 30, TextOutput: 10}
	tests := []struct {
		name       string
		usage      any
		wantUSD    float64
		wantSource string
	}{
		{"flat", map[string]any{"input_tokens": 50, "input_tokens_details": map[string]any{"text_tokens": 40, "image_tokens": 10},
			"output_tokens": 4160, "total_tokens": 4210},
			(40*5 + 10*8 + 4160*30) / 1e6, providers.CostUsage},
		{"with output details", map[string]any{"input_tokens": 50, "input_tokens_details": map[string]any{"text_tokens": 50, "image_tokens": 0},
			"output_tokens": 4300, "output_tokens_details": map[string]any{"image_tokens": 4160, "text_tokens": 140}, "total_tokens": 4350},
			(50*5 + 4160*30 + 140*10) / 1e6, providers.CostUsage},
		{"no details", map[string]any{"input_tokens": 20, "output_tokens": 1056, "total_tokens": 1076},
			(20*5 + 1056*30) / 1e6, providers.CostUsage},
		{"no usage", nil, 0.04, providers.CostCatalog},
	}
	for _, tt := range tests {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			body := map[string]any{"created": 1, "data": []map[string]string{{"b64_json": base64.StdEncoding.EncodeToString(png)}}}
			if tt.usage != nil {
				body["usage"] = tt.usage
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(body)
		})
		c := openai.New(openai.Config{APIKey: "sk-test", BaseURL: f.URL + "/v1", Model: "gpt-image-2", TokenPrices: prices,
			Price: func(w, h int, tier string) float64 { return 0.04 }})
		res, err := c.Generate(context.Background(), providers.Request{Prompt: "a fox", Width: 1024, Height: 1024, Quality: "premium"})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if math.Abs(res.CostUSD-tt.wantUSD) > 1e-12 || res.CostSource != tt.wantSource {
			t.Errorf("%s: cost %v from %s, want %v from %s", tt.name, res.CostUSD, res.CostSource, tt.wantUSD, tt.wantSource)
		}
	}
}

// TestOptionsForwarded: OpenAI's options reach the API where the model has
// them: background and moderation for GPT image generations, background
// and input_fidelity for their edits, style for dall-e-3 only, user always.
func TestOptionsForwarded(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { b64Response(w, 1) })
	opts := providers.Request{Prompt: "a logo", Width: 1024, Height: 1024, Background: "transparent", Moderation: "low",
		InputFidelity: "high", Style: "vivid", User: "end-user-7"}
	if _, err := client(f, "gpt-image-1", "sk-test").Generate(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(f.body, &got); err != nil {
		t.Fatal(err)
	}
	if got["background"] != "transparent" || got["moderation"] != "low" || got["user"] != "end-user-7" || got["style"] != nil {
		t.Errorf("gpt-image-1 generation body %v, want background, moderation and user, no style", got)
	}
	if _, err := client(f, "dall-e-3", "sk-test").Generate(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := json.Unmarshal(f.body, &got); err != nil {
		t.Fatal(err)
	}
	if got["style"] != "vivid" || got["background"] != nil || got["moderation"] != nil {
		t.Errorf("dall-e-3 body %v, want style and no background or moderation", got)
	}
	edit := opts
	edit.Mode, edit.References = "edit", [][]byte{png}
	if _, err := client(f, "gpt-image-1", "sk-test").Generate(context.Background(), edit); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"background": "transparent", "input_fidelity": "high", "user": "end-user-7"} {
		if v := f.form.Value[k]; len(v) != 1 || v[0] != want {
			t.Errorf("edit field %s = %v, want %s", k, v, want)
		}
	}
}

// TestModelLimitIsUnsupported: a 400 refusing what the model cannot do
// (dall-e-3 makes one image a call; an error naming the n parameter) is
// unsupported, which the gateway answers by trying the next model, while
// a 400 refusing the request itself stays bad_request, which ends it.
func TestModelLimitIsUnsupported(t *testing.T) {
	const nRefused = `{"error":{"code":null,"message":"You must provide n=1 for this model.","param":null,"type":"invalid_request_error"}}`
	tests := []struct {
		name  string
		model string
		n     int
		body  string
		want  providers.ErrorKind
	}{
		{"dall-e-3 with n=2", "dall-e-3", 2, nRefused, providers.KindUnsupported},
		{"error naming n", "dall-e-2", 12, `{"error":{"code":"invalid_value","message":"Invalid value for n.","param":"n","type":"invalid_request_error"}}`, providers.KindUnsupported},
		{"dall-e-3 with n=1: the request itself", "dall-e-3", 1, `{"error":{"code":null,"message":"Invalid prompt.","param":"prompt","type":"invalid_request_error"}}`, providers.KindBadRequest},
		{"gpt-image-1 with n=2: the request itself", "gpt-image-1", 2, `{"error":{"code":"invalid_value","message":"Invalid size.","param":"size","type":"invalid_request_error"}}`, providers.KindBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(400)
				io.WriteString(w, tt.body)
			})
			_, err := client(f, tt.model, "sk-test").Generate(context.Background(), providers.Request{Prompt: "x", N: tt.n})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tt.want || pe.Retryable() {
				t.Fatalf("Generate = %#v, want kind %s, not retryable", err, tt.want)
			}
		})
	}
}

// TestCompressionForwarded: a GPT image model is told the JPEG or WebP
// quality asked for, never with PNG (the API refuses it), and an image
// that comes back in the asked format is marked as encoded at it, so the
// server does not encode it again.
func TestCompressionForwarded(t *testing.T) {
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"created": 1, "data": []map[string]string{{"b64_json": base64.StdEncoding.EncodeToString(jpg.Bytes())}}})
	})
	q := 60
	for _, tt := range []struct {
		format         string
		wantSent       any
		wantCompressed bool
	}{{"jpeg", 60.0, true}, {"webp", 60.0, false}, {"png", nil, false}} {
		res, err := client(f, "gpt-image-1", "sk-test").Generate(context.Background(),
			providers.Request{Prompt: "a logo", Width: 1024, Height: 1024, OutputFormat: tt.format, OutputCompression: &q})
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(f.body, &got); err != nil {
			t.Fatal(err)
		}
		if got["output_compression"] != tt.wantSent || res.Images[0].Compressed != tt.wantCompressed {
			t.Errorf("%s: sent output_compression %v, image marked compressed %v; want %v, %v (the fake answers JPEG)",
				tt.format, got["output_compression"], res.Images[0].Compressed, tt.wantSent, tt.wantCompressed)
		}
	}
	edit := providers.Request{Mode: "edit", References: [][]byte{png}, Prompt: "bluer", OutputFormat: "webp", OutputCompression: &q}
	if _, err := client(f, "gpt-image-1", "sk-test").Generate(context.Background(), edit); err != nil {
		t.Fatal(err)
	}
	if v := f.form.Value["output_compression"]; len(v) != 1 || v[0] != "60" {
		t.Errorf("edit field output_compression = %v, want 60", v)
	}
}
