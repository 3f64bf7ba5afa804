package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestSmokeNoKeys: without a vendor key smoke sends nothing, names the
// variable each model needs, and exits 0.
func TestSmokeNoKeys(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"smoke"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("smoke without keys = %v, want nil\n%s", err, out.String())
	}
	for _, want := range []string{"no OPENAI_API_KEY: not tried: gpt-image-2", "no GEMINI_API_KEY", "no BFL_API_KEY", "nothing was sent"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSmokeOpenAI: with OPENAI_API_KEY (and a base URL pointing at a fake
// OpenAI Images API) each GPT image model gets one request at its
// cheapest size and tier; the cost comes from the usage the API reports
// (both shapes: with and without output_tokens_details), and a model the
// API fails makes smoke exit 1.
func TestSmokeOpenAI(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/images/generations" || r.Header.Get("Authorization") != "Bearer sk-test" {
			http.Error(w, `{"error":{"message":"bad call"}}`, http.StatusBadRequest)
			return
		}
		var req struct {
			Model, Size, Quality string
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
			return
		}
		if req.Model == "gpt-image-1" {
			http.Error(w, `{"error":{"message":"this model is not available to your organisation","type":"invalid_request_error"}}`, http.StatusForbidden)
			return
		}
		var buf bytes.Buffer
		img := image.NewNRGBA(image.Rect(0, 0, 1024, 1024))
		img.Set(512, 512, color.NRGBA{R: 255, A: 255})
		_ = png.Encode(&buf, img)
		usage := `{"input_tokens":20,"output_tokens":272}`
		if req.Model == "gpt-image-2" {
			usage = `{"input_tokens":20,"input_tokens_details":{"text_tokens":20},"output_tokens":300,"output_tokens_details":{"image_tokens":272,"text_tokens":28}}`
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"created":1,"data":[{"b64_json":"` + base64.StdEncoding.EncodeToString(buf.Bytes()) + `"}],"usage":` + usage + `}`))
	}))
	defer srv.Close()
	env := map[string]string{"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": srv.URL}
	var out bytes.Buffer
	err := run(context.Background(), []string{"smoke", "--json"}, func(k string) string { return env[k] }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "1 of 4") {
		t.Errorf("smoke with one failing model = %v, want an error counting 1 of 4", err)
	}
	got := map[string]smokeResult{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r smokeResult
		if json.Unmarshal([]byte(line), &r) == nil && r.Model != "" {
			got[r.Model] = r
		}
	}
	if calls.Load() < 4 {
		t.Errorf("%d calls to the fake API, want one per GPT image model", calls.Load())
	}
	for _, m := range []string{"gpt-image-2", "gpt-image-1.5", "gpt-image-1-mini"} {
		r := got[m]
		if r.Status != "ok" || r.Size != "1024x1024" || r.CostSource != "usage" || r.CostUSD <= 0 || !strings.HasSuffix(r.Requested, "draft") {
			t.Errorf("%s: %+v, want ok at 1024x1024 with its cost from the usage, the draft tier requested", m, r)
		}
	}
	if r := got["gpt-image-1"]; r.Status != "error" || !strings.Contains(r.Error, "not available") {
		t.Errorf("gpt-image-1: %+v, want the API's error", r)
	}
	if r := got["flux-2-pro"]; r.Status != "no_key" || r.KeyEnv != "BFL_API_KEY" {
		t.Errorf("flux-2-pro: %+v, want no_key naming BFL_API_KEY", r)
	}
}
