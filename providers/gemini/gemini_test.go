package gemini_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/gemini"
	"github.com/routelab/routelab/providers/sim"
)

var png = sim.Render("a test image", 16, 16, 1, 1)

const badKey = `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`

type fake struct {
	*httptest.Server
	path string
	body map[string]any
}

// newFake answers like the Gemini API: it checks x-goog-api-key, records
// the request, and calls handle.
func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		if r.Header.Get("x-goog-api-key") != "AIza-test" {
			w.WriteHeader(400)
			io.WriteString(w, badKey)
			return
		}
		f.path = r.URL.Path
		b, _ := io.ReadAll(r.Body)
		f.body = nil
		json.Unmarshal(b, &f.body)
		handle(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func imagePart() string {
	return `{"inlineData":{"mimeType":"image/png","data":"` + base64.StdEncoding.EncodeToString(png) + `"}}`
}

func client(f *fake, model, key string) *gemini.Client {
	return gemini.New(gemini.Config{APIKey: key, BaseURL: f.URL + "/v1beta", Model: model,
		Price: func(int, int, string) float64 { return 0.039 }})
}

func TestGenerateContent(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":"Here is your fox."},`+imagePart()+`],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":1290},"modelVersion":"gemini-2.5-flash-image"}`)
	})
	ref := sim.Render("ref", 8, 8, 1, 3)
	res, err := client(f, "gemini-2.5-flash-image", "AIza-test").Generate(context.Background(),
		providers.Request{Mode: "edit", Prompt: "make it night", References: [][]byte{ref}, Width: 1536, Height: 1024})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(res.Images) != 1 || !bytes.Equal(res.Images[0].Bytes, png) || res.Images[0].MIME != "image/png" || res.CostUSD != 0.039 {
		t.Fatalf("Generate = %+v", res)
	}
	if f.path != "/v1beta/models/gemini-2.5-flash-image:generateContent" {
		t.Errorf("path %s", f.path)
	}
	parts := f.body["contents"].([]any)[0].(map[string]any)["parts"].([]any)
	if parts[0].(map[string]any)["text"] != "make it night" {
		t.Errorf("first part %v, want the prompt", parts[0])
	}
	inline := parts[1].(map[string]any)["inlineData"].(map[string]any)
	if got, _ := base64.StdEncoding.DecodeString(inline["data"].(string)); !bytes.Equal(got, ref) || inline["mimeType"] != "image/png" {
		t.Errorf("reference part %v", inline["mimeType"])
	}
	gc := f.body["generationConfig"].(map[string]any)
	if gc["imageConfig"].(map[string]any)["aspectRatio"] != "3:2" {
		t.Errorf("generationConfig %v, want aspectRatio 3:2", gc)
	}
}

func TestGenerateContentN(t *testing.T) {
	calls := 0
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		calls++
		io.WriteString(w, `{"candidates":[{"content":{"parts":[`+imagePart()+`]},"finishReason":"STOP"}]}`)
	})
	res, err := client(f, "gemini-2.5-flash-image", "AIza-test").Generate(context.Background(), providers.Request{Prompt: "x", N: 3})
	if err != nil || len(res.Images) != 3 || calls != 3 {
		t.Fatalf("Generate(n=3) = %d images after %d calls, err %v", len(res.Images), calls, err)
	}
}

func TestImagenPredict(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		b := base64.StdEncoding.EncodeToString(png)
		io.WriteString(w, `{"predictions":[{"bytesBase64Encoded":"`+b+`","mimeType":"image/png"},{"bytesBase64Encoded":"`+b+`","mimeType":"image/png"}]}`)
	})
	res, err := client(f, "imagen-4.0-generate-001", "AIza-test").Generate(context.Background(), providers.Request{Prompt: "a lighthouse", N: 2, Width: 1024, Height: 1820})
	if err != nil || len(res.Images) != 2 {
		t.Fatalf("Generate(imagen) = %+v, %v", res, err)
	}
	if f.path != "/v1beta/models/imagen-4.0-generate-001:predict" {
		t.Errorf("path %s", f.path)
	}
	params := f.body["parameters"].(map[string]any)
	if params["sampleCount"] != 2.0 || params["aspectRatio"] != "9:16" || f.body["instances"].([]any)[0].(map[string]any)["prompt"] != "a lighthouse" {
		t.Errorf("predict body %v", f.body)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		model    string
		key      string
		status   int
		body     string
		wantKind providers.ErrorKind
		wantWait time.Duration
	}{
		{"invalid key", "gemini-2.5-flash-image", "nope", 0, "", providers.KindAuth, 0},
		{"permission denied", "gemini-2.5-flash-image", "AIza-test", 403,
			`{"error":{"code":403,"message":"Method doesn't allow unregistered callers.","status":"PERMISSION_DENIED"}}`, providers.KindAuth, 0},
		{"resource exhausted with RetryInfo", "gemini-2.5-flash-image", "AIza-test", 429,
			`{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"27s"}]}}`,
			providers.KindRateLimited, 27 * time.Second},
		{"bad argument", "gemini-2.5-flash-image", "AIza-test", 400,
			`{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}`, providers.KindBadRequest, 0},
		{"imagen blocked (400)", "imagen-4.0-generate-001", "AIza-test", 400,
			`{"error":{"code":400,"message":"Image generation failed with the following error: The response is blocked, as it may violate our policies.","status":"INVALID_ARGUMENT"}}`,
			providers.KindContentPolicy, 0},
		{"internal", "gemini-2.5-flash-image", "AIza-test", 500,
			`{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}`, providers.KindUnavailable, 0},
		{"overloaded", "gemini-2.5-flash-image", "AIza-test", 503,
			`{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`, providers.KindUnavailable, 0},
		{"deadline exceeded", "gemini-2.5-flash-image", "AIza-test", 504,
			`{"error":{"code":504,"message":"Deadline expired before operation could complete.","status":"DEADLINE_EXCEEDED"}}`, providers.KindTimeout, 0},
		{"prompt blocked", "gemini-2.5-flash-image", "AIza-test", 200,
			`{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":7}}`, providers.KindContentPolicy, 0},
		{"image safety finish", "gemini-2.5-flash-image", "AIza-test", 200,
			`{"candidates":[{"content":{"parts":[]},"finishReason":"IMAGE_SAFETY"}]}`, providers.KindContentPolicy, 0},
		{"text-only refusal", "gemini-2.5-flash-image", "AIza-test", 200,
			`{"candidates":[{"content":{"parts":[{"text":"I can't create images of identifiable people."}]},"finishReason":"STOP"}]}`, providers.KindContentPolicy, 0},
		{"empty candidate", "gemini-2.5-flash-image", "AIza-test", 200,
			`{"candidates":[{"content":{"parts":[]},"finishReason":"OTHER"}]}`, providers.KindUnavailable, 0},
		{"imagen all filtered", "imagen-4.0-generate-001", "AIza-test", 200,
			`{"predictions":[{"raiFilteredReason":"Your current safety filter threshold filtered out the generated image."}]}`, providers.KindContentPolicy, 0},
		{"imagen nothing", "imagen-4.0-generate-001", "AIza-test", 200, `{}`, providers.KindContentPolicy, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := client(f, tt.model, tt.key).Generate(context.Background(), providers.Request{Prompt: "x"})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tt.wantKind || pe.RetryAfter != tt.wantWait || pe.Provider != "gemini" {
				t.Fatalf("Generate = %#v, want kind %s retry-after %v", err, tt.wantKind, tt.wantWait)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := client(f, "gemini-2.5-flash-image", "AIza-test").Generate(ctx, providers.Request{Prompt: "x"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindTimeout {
		t.Fatalf("Generate past the deadline = %v, want timeout", err)
	}
}
