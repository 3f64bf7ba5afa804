package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
	"github.com/routelab/routelab/redisstate/redistest"
	"github.com/routelab/routelab/server/replica"
)

// BenchmarkServeHandler is bench serve without the network and the load
// generator: the routelab handler called directly, with the same stack
// (zero-latency sim, QA, events through the producer to a broker in this
// process). cpu-us/op is the process CPU per request, background goroutines
// (producer, kafka-go, broker, GC) included: what routelab adds.
func BenchmarkServeHandler(b *testing.B) {
	for _, state := range []bool{false, true} {
		name := "memory"
		if state {
			name = "state-store"
		}
		b.Run(name, func(b *testing.B) { benchServeHandler(b, state) })
	}
}

// benchServeHandler measures the handler with its limits and edit chains
// in this process's memory, or (state) in a redis-server child.
func benchServeHandler(b *testing.B, state bool) {
	ctx := context.Background()
	tmp := b.TempDir()
	br := brokertest.Start(b, broker.Config{DataDir: tmp + "/kafka"})
	key := "rl_bench_handler"
	o := replica.BenchOptions(br.Addr(), tmp, key, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if state {
		o.StateStore, o.AdminAddr, o.AdminToken = redistest.Start(b).URL(), "127.0.0.1:0", "adm_bench"
	}
	rl, err := replica.Start(ctx, o)
	if err != nil {
		b.Fatal(err)
	}
	defer rl.Stop(ctx, 10*time.Second)
	h := rl.Server().App.Handler()
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
