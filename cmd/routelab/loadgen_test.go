package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/color"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/server"
)

// mustServe runs a real server (test doubles for models) with the
// experiments control plane in process; it returns its API's URL, a client
// of its admin listener (base is that listener's URL) and the recording
// producer.
func mustServe(t *testing.T) (string, *expAdminClient, *gatewaytest.Producer) {
	t.Helper()
	return mustServeWith(t, gateway.Config{SampleRate: -1})
}

// mustServeWith serves with the gateway's config gw, without per-key rate
// limiting (loadgen sends as fast as the server answers).
func mustServeWith(t *testing.T, gw gateway.Config) (string, *expAdminClient, *gatewaytest.Producer) {
	t.Helper()
	cfg := server.Config{AdminToken: "adm", RatePerSec: math.Inf(1), RateBurst: 1 << 30}
	keys := server.NewMemKeys()
	if _, err := keys.Insert(context.Background(), "acme", "test", "rl_loadgen"); err != nil {
		t.Fatal(err)
	}
	prod := gatewaytest.NewProducer(1 << 16)
	w, err := wireExperiments(context.Background(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)), prod, nil, nil, nil)
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
	srv := server.New(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, server.Deps{
		Gateway:     g,
		Catalog:     []server.Model{{Name: "fast"}, {Name: "strong"}},
		Events:      prod,
		Keys:        keys,
		Registry:    reg,
		Experiments: w.Registry,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done, adminDone := make(chan error, 1), make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	go func() { adminDone <- srv.ServeAdmin(aln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		<-adminDone
	})
	url := "http://" + ln.Addr().String()
	return url, &expAdminClient{base: "http://" + aln.Addr().String(), token: "adm", http: srvClient()}, prod
}

func TestLoadgenWithExperiment(t *testing.T) {
	url, adm, prod := mustServe(t)
	ctx := context.Background()
	env := func(out *bytes.Buffer) Env {
		return Env{Getenv: func(string) string { return "" }, Stdout: out, Stderr: io.Discard}
	}
	var out bytes.Buffer
	admin := []string{"--admin-url", adm.base, "--admin-token", "adm"}
	if err := run(ctx, append([]string{"experiments", "create", "-f", "../../datasets/experiments/ab-policies.json"}, admin...), env(&out).Getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(strings.TrimSpace(out.String()))
	id := fields[len(fields)-1]
	out.Reset()
	if err := run(ctx, append([]string{"experiments", "start", id}, admin...), env(&out).Getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	args := []string{"loadgen", "--target", url, "--api-key", "rl_loadgen", "--workload", smallWorkload(t, 300), "--requests", "300", "--users", "60", "--concurrency", "4", "--json"}
	if err := run(ctx, args, env(&out).Getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var sum LoadSummary
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if sum.Requests != 300 || sum.OK != 300 || sum.UsersSeen > 60 || sum.UsersSeen < 50 {
		t.Fatalf("summary = %+v", sum)
	}
	if sum.Arms[id+":control"]+sum.Arms[id+":treatment"] != 300 || sum.Arms[id+":control"] == 0 || sum.Arms[id+":treatment"] == 0 {
		t.Fatalf("arms = %v", sum.Arms)
	}
	// every decision carries its arm, and a user always gets the same arm
	armOf := map[string]string{}
	decisions := 0
	for _, e := range prod.Events() {
		d, ok := e.Value.(*events.Decision)
		if !ok {
			continue
		}
		decisions++
		if len(d.Arms) != 1 || d.Arms[0].Unit != d.Unit {
			t.Fatalf("decision arms = %+v", d.Arms)
		}
		if prev, ok := armOf[d.Unit]; ok && prev != d.Arms[0].Arm {
			t.Fatalf("user %s in %s and %s", d.Unit, prev, d.Arms[0].Arm)
		}
		armOf[d.Unit] = d.Arms[0].Arm
	}
	if decisions != 300 {
		t.Fatalf("%d decisions", decisions)
	}
	if sum.Feedback == 0 {
		t.Errorf("no feedback sent")
	}
	var audits int
	for _, e := range prod.Events() {
		if a, ok := e.Value.(*events.Audit); ok && a.Subject == id {
			audits++
		}
	}
	if audits != 2 {
		t.Errorf("audit events for %s = %d, want 2", id, audits)
	}
	_ = experiments.StatusRunning
}

// smallWorkload writes loadgen's built-in mix (seed 1, n requests) with
// 64x64 images and returns its path. What these tests check (arms, users,
// edit chains) does not depend on the size, and every request renders,
// encodes and inspects its image: at the mix's 1024x1024, 300 requests
// took over five minutes under -race on a loaded 2-core machine.
func smallWorkload(t *testing.T, n int) string {
	t.Helper()
	items, err := datasets.Generate(1, n)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, it := range items {
		it.Request.Width, it.Request.Height = 64, 64
		if err := enc.Encode(it); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "workload.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Edit chains outlive serve's chain memory in a long run; loadgen restarts
// a chain whose parent serve forgot instead of counting an error.
func TestLoadgenRestartsForgottenChains(t *testing.T) {
	url, _, _ := mustServeWith(t, gateway.Config{SampleRate: -1, ChainSize: 2})
	var out bytes.Buffer
	args := []string{"loadgen", "--target", url, "--api-key", "rl_loadgen", "--workload", smallWorkload(t, 300), "--requests", "300", "--users", "20", "--concurrency", "4", "--json"}
	if err := run(context.Background(), args, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var sum LoadSummary
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if sum.Requests != 300 || sum.Errors != 0 || sum.ChainRestarts == 0 {
		t.Fatalf("summary = %+v, want 300 requests, no errors, some chains restarted", sum)
	}
}

func TestLoadgenBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"loadgen", "--target", "http://x", "--api-key", "k"},
		{"loadgen", "--target", "http://x", "--api-key", "k", "--requests", "5", "--duration", "1s"},
		{"loadgen", "--target", "http://x", "--api-key", "k", "--requests", "5", "--users", "0"},
	} {
		if err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%v) succeeded", args)
		}
	}
}

func srvClient() *http.Client { return &http.Client{Timeout: 10 * time.Second} }
