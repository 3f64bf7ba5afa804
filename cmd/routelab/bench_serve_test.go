package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server"
)

// BenchmarkServeHandler is bench serve without the network and the load
// generator: the routelab handler called directly, with the same stack
// (zero-latency sim, QA, events through the producer to a broker in this
// process). cpu-us/op is the process CPU per request, background goroutines
// (producer, kafka-go, broker, GC) included: what routelab adds.
func BenchmarkServeHandler(b *testing.B) {
	ctx := context.Background()
	tmp := b.TempDir()
	br, err := broker.Start(ctx, broker.Config{DataDir: tmp + "/kafka"})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	key := "rl_bench_handler"
	rl, err := startServe(ctx, serveOptions{
		addr: "127.0.0.1:0", brokers: []string{br.Addr()}, dataDir: tmp, policy: "rules",
		simOptions: sim.Options{Variants: 1, CacheBytes: 1 << 30}, seedKey: key, seedTenant: "bench",
		catalogFix: func(c *router.Catalog) {
			for i := range c.Models {
				c.Models[i].ErrorRate, c.Models[i].RateLimitRate = 0, 0
			}
		},
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		cfg:    server.Config{RatePerSec: 1e12, RateBurst: 1 << 30, ProviderConcurrency: 4096, ProviderQueue: 4096},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer rl.stop(ctx, 10*time.Second)
	h := rl.srv.App.Handler()
	body := []byte(`{"prompt":"a red fox in snow at dawn","size":"1024x1024","response_format":"b64_json"}`)
	var c fasthttp.RequestCtx // reused, as fasthttp's server does
	call := func() {
		c.Request.Reset()
		c.Response.Reset()
		c.Request.Header.SetMethod("POST")
		c.Request.SetRequestURI("/v1/images")
		c.Request.Header.SetContentType("application/json")
		c.Request.Header.Set("Authorization", "Bearer "+key)
		c.Request.SetBody(body)
		h(&c)
		if c.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", c.Response.StatusCode(), c.Response.Body())
		}
	}
	for range 8000 { // fill the sim's render cache and QA's result cache
		call()
	}
	b.ReportAllocs()
	c0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		call()
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-us/op")
}
