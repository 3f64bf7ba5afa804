package server_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/server"
)

// BenchmarkImages measures the serving path per request without the
// network (the fasthttp handler called directly), against a bare fiber
// handler that returns the same bytes: the ratio is what routelab adds.
func BenchmarkImages(b *testing.B) {
	keys := server.NewMemKeys()
	if _, err := keys.Insert(context.Background(), "acme", "bench", "rl_benchkey"); err != nil {
		b.Fatal(err)
	}
	fast := &gatewaytest.Provider{Model: "fast", Color: red, CostUSD: 0.01}
	reg := prometheus.NewRegistry()
	gw := gateway.New(gateway.Config{SampleRate: -1}, gateway.Deps{
		Policy:    &gatewaytest.Router{Model: "fast", Version: "p1"},
		Providers: map[string]providers.Provider{"fast": fast},
		QA:        gateway.NewQA(qa.New(qa.DefaultThresholds()).WithCache(1024)),
		Events:    discard{},
		Registry:  reg,
	})
	app := server.New(slog.New(slog.NewTextHandler(io.Discard, nil)), server.Config{RatePerSec: 1e12, RateBurst: 1 << 30}, server.Deps{
		Gateway:  gw,
		Events:   discard{},
		Keys:     keys,
		Registry: reg,
	})
	body := []byte(`{"prompt":"a red fox in snow","size":"512x512"}`)
	routelab := app.Handler()
	ctx := request(body)
	routelab(ctx)
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	sample := append([]byte(nil), ctx.Response.Body()...)
	bareApp := fiber.New()
	bareApp.Post("/v1/images", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(sample)
	})
	bare := bareApp.Handler()
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bare(request(body))
		}
	})
	b.Run("routelab", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			routelab(request(body))
		}
	})
}

func request(body []byte) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/images")
	ctx.Request.Header.SetContentType("application/json")
	ctx.Request.Header.Set("Authorization", "Bearer rl_benchkey")
	ctx.Request.SetBody(body)
	return ctx
}

type discard struct{}

func (discard) Enqueue(string, string, any) {}
