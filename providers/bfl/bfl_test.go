package bfl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/bfl"
	"github.com/routelab/routelab/providers/sim"
)

var png = sim.Render("a test image", 16, 16, 1, 1)

// fakeBFL behaves as BFL's API documents: submit answers an id and a
// polling_url (and the cost in credits), get_result answers the statuses
// in turn, the last with result.sample, a URL served without the key.
type fakeBFL struct {
	*httptest.Server
	statuses []string
	polls    atomic.Int32
	submit   map[string]any
	keys     []string
	cost     *float64
}

func newFake(t *testing.T, statuses ...string) *fakeBFL {
	f := &fakeBFL{statuses: statuses}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.keys = append(f.keys, r.Header.Get("x-key"))
		switch r.URL.Path {
		case "/v1/flux-2-pro":
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &f.submit)
			out := map[string]any{"id": "t1", "polling_url": f.URL + "/v1/get_result?id=t1"}
			if f.cost != nil {
				out["cost"] = *f.cost
			}
			json.NewEncoder(w).Encode(out)
		case "/v1/get_result":
			i := int(f.polls.Add(1)) - 1
			st := f.statuses[min(i, len(f.statuses)-1)]
			out := map[string]any{"id": "t1", "status": st}
			if st == "Ready" {
				out["result"] = map[string]any{"sample": f.URL + "/sample.png"}
			}
			json.NewEncoder(w).Encode(out)
		case "/sample.png":
			w.Write(png)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func client(f *fakeBFL) *bfl.Client {
	return bfl.New(bfl.Config{APIKey: "bfl-key", BaseURL: f.URL, Model: "flux-2-pro",
		Price: func(w, h int, tier string) float64 { return 0.0472 },
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
}

func TestSubmitAndPoll(t *testing.T) {
	f := newFake(t, "Pending", "Generating", "Ready")
	cost := 4.5
	f.cost = &cost
	ref := sim.Render("ref", 8, 8, 1, 2)
	res, err := client(f).Generate(context.Background(), providers.Request{
		Mode: "edit", Prompt: "add a hat", References: [][]byte{ref, png}, Width: 1536, Height: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || !bytes.Equal(res.Images[0].Bytes, png) || f.polls.Load() != 3 {
		t.Fatalf("Generate = %d images after %d polls, want the sample after 3", len(res.Images), f.polls.Load())
	}
	if res.CostUSD != 0.045 || res.CostSource != providers.CostUsage {
		t.Errorf("cost %v from %s, want the submit's 4.5 credits = $0.045 from usage", res.CostUSD, res.CostSource)
	}
	if f.submit["width"] != 1536.0 || f.submit["height"] != 1024.0 || f.submit["input_image"] == nil || f.submit["input_image_2"] == nil {
		t.Errorf("submit body %v, want width, height, input_image and input_image_2", keys(f.submit))
	}
	for i, k := range f.keys[:len(f.keys)-1] { // the sample is fetched without it
		if k != "bfl-key" {
			t.Errorf("call %d sent x-key %q", i, k)
		}
	}
	if last := f.keys[len(f.keys)-1]; last != "" {
		t.Errorf("the sample was fetched with x-key %q, want none", last)
	}

	f2 := newFake(t, "Ready")
	res, err = client(f2).Generate(context.Background(), providers.Request{Prompt: "x", Width: 1024, Height: 1024})
	if err != nil || res.CostUSD != 0.0472 || res.CostSource != providers.CostCatalog {
		t.Errorf("without a cost: %v, cost %v from %s, want the catalog's 0.0472", err, res.CostUSD, res.CostSource)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		statuses []string
		handler  http.HandlerFunc // replaces the fake's submit when set
		wantKind providers.ErrorKind
	}{
		{"moderated request", []string{"Pending", "Request Moderated"}, nil, providers.KindContentPolicy},
		{"moderated content", []string{"Content Moderated"}, nil, providers.KindContentPolicy},
		{"task error", []string{"Error"}, nil, providers.KindUnavailable},
		{"rate limited", nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(429)
		}, providers.KindRateLimited},
		{"out of credits", nil, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(402) }, providers.KindAuth},
		{"foreign polling url", nil, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"id":"t","polling_url":"https://evil.example/v1/get_result?id=t"}`)
		}, providers.KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var url string
			if tt.handler != nil {
				srv := httptest.NewServer(tt.handler)
				t.Cleanup(srv.Close)
				url = srv.URL
			} else {
				url = newFake(t, tt.statuses...).URL
			}
			c := bfl.New(bfl.Config{APIKey: "k", BaseURL: url, Model: "flux-2-pro", Sleep: func(ctx context.Context, _ time.Duration) error { return nil }})
			_, err := c.Generate(context.Background(), providers.Request{Prompt: "x"})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tt.wantKind {
				t.Fatalf("Generate = %v, want kind %s", err, tt.wantKind)
			}
			if tt.wantKind == providers.KindRateLimited && pe.RetryAfter != 3*time.Second {
				t.Errorf("RetryAfter = %v, want 3s", pe.RetryAfter)
			}
		})
	}
}

// TestPollStopsAtDeadline: polling a task that never finishes ends when
// the request's context does.
func TestPollStopsAtDeadline(t *testing.T) {
	f := newFake(t, "Pending")
	ctx, cancel := context.WithCancel(context.Background())
	c := bfl.New(bfl.Config{APIKey: "k", BaseURL: f.URL, Model: "flux-2-pro", Sleep: func(ctx context.Context, _ time.Duration) error {
		if f.polls.Load() >= 5 {
			cancel()
		}
		return ctx.Err()
	}})
	_, err := c.Generate(ctx, providers.Request{Prompt: "x"})
	if err == nil || f.polls.Load() != 5 {
		t.Fatalf("Generate = %v after %d polls, want an error after 5", err, f.polls.Load())
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
