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
	rates   *gateway.RateLimits
	rate    gateway.Rate // per API key
	refs    *refLoader
	idem    IdempotencyStore
	ids     *gateway.IDs
}

func newHandlers(logger *slog.Logger, cfg Config, deps Deps, srv *Server) *handlers {
	h := &handlers{
		log:     logger,
		cfg:     cfg,
		deps:    deps,
		srv:     srv,
		catalog: map[string]Model{},
		rate:    gateway.Rate{PerSec: cfg.RatePerSec, Burst: cfg.RateBurst},
		refs:    newRefLoader(cfg, logger),
		idem:    deps.Idempotency,
		ids:     gateway.NewIDs(),
	}
	if h.idem == nil {
		h.idem = newIdempotency(cfg.IdempotencySize, cfg.IdempotencyBytes)
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
	h.rates = gateway.NewRateLimits(deps.Rates, cfg.Replicas, deps.Now, func(_ string, err error) {
		h.m.stateFallback.WithLabelValues("rate").Inc()
		logger.Warn("rate limit store unavailable: this replica's share of the rate applies", "replicas", cfg.Replicas, "err", err)
	})
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
	if ok, wait := h.rates.Allow(c.UserContext(), "key:"+k.ID, h.rate); !ok {
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
// admin listener does. A shared state store that is down leaves the
// replica ready (every part has its fallback, and all replicas would go
// out of rotation at once); "degraded" names it.
func (h *handlers) readyz(c *fiber.Ctx) error {
	if h.notReady() != nil {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready"})
	}
	if h.stateDown() != nil {
		return c.JSON(fiber.Map{"status": "ready", "degraded": []string{"state_store"}})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (h *handlers) readyzReason(c *fiber.Ctx) error {
	if err := h.notReady(); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready", "reason": err.Error()})
	}
	if err := h.stateDown(); err != nil {
		return c.JSON(fiber.Map{"status": "ready", "degraded": fiber.Map{"state_store": fiber.Map{
			"error":       err.Error(),
			"rate":        fmt.Sprintf("per replica: the limit / %d", h.cfg.Replicas),
			"daily_cap":   "refused: 503 state_unavailable for tenants with a cap",
			"budget":      "refused: 503 state_unavailable for tenants with a spend budget; the spend of others is kept here and written when the store is back; /v1/usage 503",
			"idempotency": "off: requests with an Idempotency-Key run, a retry may run again",
			"chains":      "this replica's only: edits of outputs made elsewhere get parent_not_found",
		}}})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// stateDown is the shared state store's error while it cannot be reached.
func (h *handlers) stateDown() error {
	if h.deps.State == nil {
		return nil
	}
	return h.deps.State.Healthy()
}

func (h *handlers) metricsHandler() fiber.Handler {
	g, ok := h.deps.Registry.(prometheus.Gatherer)
	if !ok {
		return func(c *fiber.Ctx) error { return fiber.ErrNotFound }
	}
	return adaptor.HTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}
