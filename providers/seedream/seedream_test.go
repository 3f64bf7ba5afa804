package seedream_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/seedream"
	"github.com/routelab/routelab/providers/sim"
)

var png = sim.Render("a test image", 16, 16, 1, 1)

func client(url string) *seedream.Client {
	return seedream.New(seedream.Config{APIKey: "ark-key", BaseURL: url, Model: "seedream-4-5-251128",
		Price: func(w, h int, tier string) float64 { return 0.04 }})
}

// TestGenerateAndEdit: the request is the Ark images API's (model, size,
// b64_json, no watermark, sequential generation off, references as data
// URIs); the answer's image comes back, billed per generated image.
func TestGenerateAndEdit(t *testing.T) {
	var got map[string]any
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
		io.WriteString(w, `{"model":"seedream-4-5-251128","created":1,"data":[{"b64_json":"`+base64.StdEncoding.EncodeToString(png)+`","size":"2496x1664"}],"usage":{"generated_images":1,"output_tokens":16224,"total_tokens":16224}}`)
	}))
	defer srv.Close()
	res, err := client(srv.URL).Generate(context.Background(), providers.Request{Mode: "edit", Prompt: "make it night",
		References: [][]byte{png}, Width: 2496, Height: 1664})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.CostUSD != 0.04 || res.CostSource != providers.CostCatalog {
		t.Fatalf("Generate = %d images at $%v (%s), want one at the catalog's $0.04", len(res.Images), res.CostUSD, res.CostSource)
	}
	imgs, _ := got["image"].([]any)
	if auth != "Bearer ark-key" || got["model"] != "seedream-4-5-251128" || got["size"] != "2496x1664" || got["response_format"] != "b64_json" ||
		got["watermark"] != false || got["sequential_image_generation"] != "disabled" || len(imgs) != 1 || !strings.HasPrefix(imgs[0].(string), "data:image/png;base64,") {
		t.Errorf("request %v (auth %q), want the Ark images API body with one data URI", got, auth)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		header   map[string]string
		wantKind providers.ErrorKind
	}{
		{"prompt refused", 400, `{"error":{"code":"InputTextSensitiveContentDetected","message":"The request failed because the input text may contain sensitive information."}}`, nil, providers.KindContentPolicy},
		{"output refused", 400, `{"error":{"code":"OutputImageSensitiveContentDetected","message":"output image may contain sensitive information"}}`, nil, providers.KindContentPolicy},
		{"error in a 200", 200, `{"error":{"code":"OutputImageSensitiveContentDetected","message":"policy"}}`, nil, providers.KindContentPolicy},
		{"bad key", 401, `{"error":{"code":"AuthenticationError","message":"the API key is invalid"}}`, nil, providers.KindAuth},
		{"rate limited", 429, `{"error":{"code":"RateLimitExceeded.EndpointRPMExceeded","message":"slow down"}}`, map[string]string{"Retry-After": "2"}, providers.KindRateLimited},
		{"server error", 500, `{"error":{"code":"InternalServiceError","message":"oops"}}`, nil, providers.KindUnavailable},
		{"no images", 200, `{"data":[]}`, nil, providers.KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			_, err := client(srv.URL).Generate(context.Background(), providers.Request{Prompt: "x", Width: 2048, Height: 2048})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tt.wantKind {
				t.Fatalf("Generate = %v, want kind %s", err, tt.wantKind)
			}
			if tt.wantKind == providers.KindRateLimited && pe.RetryAfter != 2*time.Second {
				t.Errorf("RetryAfter = %v, want 2s", pe.RetryAfter)
			}
		})
	}
}
