package ideogram_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/ideogram"
	"github.com/routelab/routelab/providers/sim"
)

var png = sim.Render("a test image", 16, 16, 1, 1)

// fake is Ideogram: the API (checks Api-Key, records the multipart form)
// and the ephemeral image host under /api/images/ephemeral/.
type fake struct {
	*httptest.Server
	path    string
	form    map[string][]string
	files   map[string][]byte
	imgAuth string // Api-Key seen by the image host, must stay empty
	gone    bool   // the image host answers 404 (the ephemeral link expired)
}

func newFake(t *testing.T, handle func(f *fake, w http.ResponseWriter, r *http.Request)) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			f.imgAuth = r.Header.Get("Api-Key")
			if f.gone {
				w.WriteHeader(404)
				return
			}
			w.Header().Set("Content-Type", "image/png")
			w.Write(png)
			return
		}
		if r.Header.Get("Api-Key") != "ideo-test" {
			w.WriteHeader(401)
			io.WriteString(w, `{"detail":"Unauthorized"}`)
			return
		}
		f.path = r.URL.Path
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"expected multipart/form-data"}`)
			return
		}
		f.form = r.MultipartForm.Value
		f.files = map[string][]byte{}
		for name, fhs := range r.MultipartForm.File {
			rd, _ := fhs[0].Open()
			f.files[name], _ = io.ReadAll(rd)
		}
		handle(f, w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func ok(n int) func(f *fake, w http.ResponseWriter, r *http.Request) {
	return func(f *fake, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"created":"2025-04-01T12:00:00Z","data":[`)
		for i := range n {
			if i > 0 {
				io.WriteString(w, ",")
			}
			fmt.Fprintf(w, `{"url":"%s/api/images/ephemeral/img%d.png","prompt":"p","resolution":"1024x1024","is_image_safe":true,"seed":12345,"style_type":"GENERAL"}`, f.URL, i)
		}
		io.WriteString(w, `]}`)
	}
}

func client(f *fake, key string) *ideogram.Client {
	return ideogram.New(ideogram.Config{APIKey: key, BaseURL: f.URL, Price: func(int, int, string) float64 { return 0.06 }})
}

func TestGenerate(t *testing.T) {
	f := newFake(t, ok(2))
	res, err := client(f, "ideo-test").Generate(context.Background(),
		providers.Request{Prompt: `a poster that says "OPEN"`, N: 2, Width: 1536, Height: 1024, Quality: "premium", Seed: 42})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(res.Images) != 2 || !bytes.Equal(res.Images[1].Bytes, png) || res.Images[0].MIME != "image/png" || res.CostUSD != 0.12 {
		t.Fatalf("Generate = %d images, cost %v", len(res.Images), res.CostUSD)
	}
	want := map[string]string{"prompt": `a poster that says "OPEN"`, "rendering_speed": "QUALITY", "num_images": "2", "aspect_ratio": "3x2", "seed": "42"}
	for k, v := range want {
		if got := f.form[k]; len(got) != 1 || got[0] != v {
			t.Errorf("form[%s] = %v, want %q", k, got, v)
		}
	}
	if f.path != "/v1/ideogram-v3/generate" {
		t.Errorf("path %s", f.path)
	}
	if f.imgAuth != "" {
		t.Error("the Api-Key was sent to the image host")
	}
}

func TestRemixAndEdit(t *testing.T) {
	ref := sim.Render("ref", 8, 8, 1, 4)
	tests := []struct {
		name      string
		mask      []byte
		wantPath  string
		wantFiles []string
	}{
		{"remix", nil, "/v1/ideogram-v3/remix", []string{"image"}},
		{"masked edit", png, "/v1/ideogram-v3/edit", []string{"image", "mask"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, ok(1))
			_, err := client(f, "ideo-test").Generate(context.Background(),
				providers.Request{Mode: "edit", Prompt: "add snow", References: [][]byte{ref}, Mask: tt.mask})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if f.path != tt.wantPath || len(f.files) != len(tt.wantFiles) || !bytes.Equal(f.files["image"], ref) {
				t.Errorf("went to %s with files %d, want %s with %v and the reference as image", f.path, len(f.files), tt.wantPath, tt.wantFiles)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		status   int
		header   map[string]string
		body     string
		wantKind providers.ErrorKind
		wantWait time.Duration
	}{
		{"auth", "wrong", 0, nil, "", providers.KindAuth, 0},
		{"safety check", "ideo-test", 422, nil, `{"error":"Prompt failed the safety check."}`, providers.KindContentPolicy, 0},
		{"rate limited", "ideo-test", 429, map[string]string{"Retry-After": "4"}, `{"error":"Too many requests"}`, providers.KindRateLimited, 4 * time.Second},
		{"bad request", "ideo-test", 400, nil, `{"error":"Invalid aspect_ratio"}`, providers.KindBadRequest, 0},
		{"forbidden", "ideo-test", 403, nil, `{"detail":"Forbidden"}`, providers.KindAuth, 0},
		{"server error", "ideo-test", 500, nil, `Internal Server Error`, providers.KindUnavailable, 0},
		{"bad gateway", "ideo-test", 502, nil, `<html>bad gateway</html>`, providers.KindUnavailable, 0},
		{"unsafe image withheld", "ideo-test", 200, nil,
			`{"created":"2025-04-01T12:00:00Z","data":[{"url":"","prompt":"p","resolution":"1024x1024","is_image_safe":false,"seed":1}]}`,
			providers.KindContentPolicy, 0},
		{"garbage", "ideo-test", 200, nil, `{{`, providers.KindUnavailable, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(f *fake, w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := client(f, tt.key).Generate(context.Background(), providers.Request{Prompt: "x"})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tt.wantKind || pe.RetryAfter != tt.wantWait || pe.Provider != "ideogram" {
				t.Fatalf("Generate = %#v, want kind %s retry-after %v", err, tt.wantKind, tt.wantWait)
			}
		})
	}
}

func TestImageFetchFails(t *testing.T) {
	f := newFake(t, func(f *fake, w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"created":"x","data":[{"url":"`+f.URL+`/gone.png","is_image_safe":true}]}`)
	})
	f.gone = true
	_, err := client(f, "ideo-test").Generate(context.Background(), providers.Request{Prompt: "x"})
	if !providers.IsRetryable(err) {
		t.Fatalf("Generate with an expired image link = %v, want a retryable error", err)
	}
}

func TestTimeout(t *testing.T) {
	f := newFake(t, func(f *fake, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := client(f, "ideo-test").Generate(ctx, providers.Request{Prompt: "x"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindTimeout {
		t.Fatalf("Generate past the deadline = %v, want timeout", err)
	}
}
