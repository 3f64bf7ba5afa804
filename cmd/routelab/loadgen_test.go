package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/color"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/server"
	"github.com/routelab/routelab/server/client"
	"github.com/routelab/routelab/server/loadgen"
	"github.com/routelab/routelab/server/replica"
	"github.com/routelab/routelab/server/servertest"
)

// mustServe runs a real server (test doubles for models) with the
// experiments control plane in process; it returns its API's URL, a client
// of its admin listener (base is that listener's URL) and the recording
// producer.
func mustServe(t *testing.T) (string, *client.Admin, *gatewaytest.Producer) {
	t.Helper()
	return mustServeWith(t, gateway.Config{SampleRate: -1})
}

// mustServeWith serves with the gateway's config gw, without per-key rate
// limiting (loadgen sends as fast as the server answers).
func mustServeWith(t *testing.T, gw gateway.Config) (string, *client.Admin, *gatewaytest.Producer) {
	t.Helper()
	cfg := server.Config{AdminToken: "adm", RatePerSec: math.Inf(1), RateBurst: 1 << 30}
	keys := server.NewMemKeys()
	if _, err := keys.Insert(context.Background(), "acme", "test", "rl_loadgen"); err != nil {
		t.Fatal(err)
	}
	prod := gatewaytest.NewProducer(1 << 16)
	w, err := replica.WireExperiments(context.Background(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)), prod, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	g := gateway.New(gw, gateway.Deps{
		Policy:    &gatewaytest.Router{Model: "fast", Chain: []string{"strong"}, Version: "p1"},
		Providers: map[string]providers.Provider{"fast": &gatewaytest.Provider{Model: "fast", Color: color.NRGBA{200, 0, 0, 255}}, "strong": &gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}}},
		QA:        &gatewaytest.Inspector{},
		Events:    prod,
		Assigner:  w.Assigner,
		Registry:  reg,
	})
	// the shipped catalog's names too: the shipped experiment specs pin them
	catalog := []server.Model{{Name: "fast"}, {Name: "strong"}}
	for _, m := range datasets.MustCatalog().Models {
		catalog = append(catalog, server.Model{Name: m.Name, Provider: m.Provider})
	}
	srv := server.New(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, server.Deps{
		Gateway:     g,
		Catalog:     catalog,
		Events:      prod,
		Keys:        keys,
		Registry:    reg,
		Experiments: w.Registry,
	})
	url, adminURL := servertest.Start(t, srv, time.Minute)
	return url, client.New(adminURL, "adm", ""), prod
}

// TestLoadgenCLI: the command's --json summary, against a serve whose
// experiments are created through the CLI (each change audited). The
// load generator itself is tested in server/loadgen.
func TestLoadgenCLI(t *testing.T) {
	t.Parallel()
	url, adm, prod := mustServe(t)
	ctx := context.Background()
	var out bytes.Buffer
	admin := []string{"--admin-url", adm.URL(), "--admin-token", "adm"}
	if err := run(ctx, append([]string{"experiments", "create", "-f", "../../datasets/experiments/ab-policies.json", "--start"}, admin...), func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(strings.TrimSpace(out.String()))
	id := fields[len(fields)-1]
	out.Reset()
	args := []string{"loadgen", "--target", url, "--api-key", "rl_loadgen", "--requests", "40", "--users", "10", "--concurrency", "4", "--json"}
	if err := run(ctx, args, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var sum loadgen.Summary
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if sum.Requests != 40 || sum.OK != 40 || sum.Arms[id+":control"]+sum.Arms[id+":treatment"] != 40 {
		t.Fatalf("summary = %+v, want 40 answered requests in %s's arms", sum, id)
	}
	var audits int
	for _, e := range prod.Events() {
		if a, ok := e.Value.(*events.Audit); ok && a.Subject == id {
			audits++
		}
	}
	if audits != 2 {
		t.Errorf("audit events for %s = %d, want 2 (create, start)", id, audits)
	}
}

func TestLoadgenBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"loadgen", "--target", "http://x", "--api-key", "k"},
		{"loadgen", "--target", "http://x", "--api-key", "k", "--requests", "5", "--duration", "1s"},
		{"loadgen", "--target", "http://x", "--api-key", "k", "--requests", "5", "--users", "0"},
		{"loadgen", "--target", "http://x", "--api-key", "k", "--requests", "5", "--size", "64"},
	} {
		if err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%v) succeeded", args)
		}
	}
}

// --size replaces every workload request's size.
func TestLoadgenSize(t *testing.T) {
	var mu sync.Mutex
	sizes := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Size string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		sizes[body.Size]++
		mu.Unlock()
		http.Error(w, `{"error":{"code":"overloaded"}}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	args := []string{"loadgen", "--target", srv.URL, "--api-key", "k", "--requests", "30", "--concurrency", "2", "--size", "64x96"}
	_ = run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 1 || sizes["64x96"] == 0 {
		t.Errorf("sizes sent = %v, want only 64x96", sizes)
	}
}
