package server

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/routelab/routelab/gateway"
)

// handlers holds what the route handlers share.
type handlers struct {
	log     *slog.Logger
	cfg     Config
	deps    Deps
	srv     *Server
	m       *metrics
	catalog map[string]Model
	sizes   [][2]int // every size some catalog model offers; empty = any
	rates   *buckets
	refs    *refLoader
	idem    *idempotency
	ids     *gateway.IDs
}

func newHandlers(logger *slog.Logger, cfg Config, deps Deps, srv *Server) *handlers {
	h := &handlers{
		log:     logger,
		cfg:     cfg,
		deps:    deps,
		srv:     srv,
		catalog: map[string]Model{},
		rates:   newBuckets(cfg.RatePerSec, cfg.RateBurst),
		refs:    newRefLoader(cfg, logger),
		idem:    newIdempotency(cfg.IdempotencySize, cfg.IdempotencyBytes),
		ids:     gateway.NewIDs(),
	}
	for _, m := range deps.Catalog {
		h.catalog[m.Name] = m
		for _, sz := range m.Sizes {
			var w, hh int
			if _, err := fmt.Sscanf(sz, "%dx%d", &w, &hh); err == nil && !slices.Contains(h.sizes, [2]int{w, hh}) {
				h.sizes = append(h.sizes, [2]int{w, hh})
			}
		}
	}
	h.m = newMetrics(deps.Registry)
	return h
}

const localRequestID = "routelab.request_id"

func (h *handlers) requestID(c *fiber.Ctx) error {
	h.srv.inflight.Add(1)
	defer h.srv.inflight.Add(-1)
	id := h.ids.Next()
	c.Locals(localRequestID, id)
	c.Set("x-routelab-request-id", id)
	return c.Next()
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// admit applies the per-key rate limit and refuses work while draining.
func (h *handlers) admit(c *fiber.Ctx) error {
	if h.srv.draining.Load() {
		return &Error{Status: fiber.StatusServiceUnavailable, Code: CodeShuttingDown, Message: "server is draining; retry on another replica", RetryAfter: 1e9}
	}
	k := keyOf(c)
	if ok, wait := h.rates.take(k.ID, h.deps.Now()); !ok {
		h.m.limited.WithLabelValues("rate").Inc()
		return &Error{Status: fiber.StatusTooManyRequests, Code: CodeRateLimited, Message: "rate limit exceeded for this API key", RetryAfter: wait}
	}
	return c.Next()
}

func (h *handlers) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// notReady says why this replica should get no traffic: draining, the
// Ready dependency (e.g. no policy loaded) or the event producer.
func (h *handlers) notReady() error {
	var err error
	switch {
	case h.srv.draining.Load():
		err = errors.New("draining")
	case h.deps.Ready != nil:
		err = h.deps.Ready()
	}
	if err == nil {
		if hp, ok := h.deps.Events.(Healthy); ok {
			err = hp.Healthy()
		}
	}
	return err
}

// readyz is the public readiness probe: ready when not draining, the policy
// is loaded and the event producer is delivering or spooling. It does not
// say why not (broker addresses, internal state): readyzReason on the
// admin listener does.
func (h *handlers) readyz(c *fiber.Ctx) error {
	if h.notReady() != nil {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready"})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (h *handlers) readyzReason(c *fiber.Ctx) error {
	if err := h.notReady(); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready", "reason": err.Error()})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (h *handlers) metricsHandler() fiber.Handler {
	g, ok := h.deps.Registry.(prometheus.Gatherer)
	if !ok {
		return func(c *fiber.Ctx) error { return fiber.ErrNotFound }
	}
	return adaptor.HTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}
