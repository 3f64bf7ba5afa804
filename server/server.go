package server

import (
	"log/slog"
	"math"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/routelab/routelab/gateway"
)

// Config holds the serving limits. Zero values take the defaults below.
type Config struct {
	BodyLimit      int           // bytes per request body (413 past it); default 32 MiB
	RequestTimeout time.Duration // deadline for one image request, all attempts; default 60 s

	MaxPromptRunes int // default 4000
	MaxN           int // images per request; default 10
	MaxRefs        int // references per request; default 8
	MaxRefBytes    int // encoded bytes per reference; default 10 MiB
	MaxRefPixels   int // width*height per reference, checked before decoding; default 40 MP
	// DecodeBytes bounds the memory one request's references may take
	// while decoded (estimated from their headers; 413 past it); default
	// 256 MiB. DecodeBytesTotal bounds all decodes in flight on the replica
	// (a request waits for room); default 1 GiB.
	DecodeBytes      int64
	DecodeBytesTotal int64
	RefMaxSide       int            // references are resized to fit this side; default 2048
	RefFetchTimeout  time.Duration  // per reference URL; default 10 s
	RefAllow         []netip.Prefix // networks reference URLs may reach despite being private/loopback
	RefCacheSize     int            // normalised references kept by content hash; default 256

	RatePerSec float64 // per API key, token bucket refill; default 50
	RateBurst  int     // per API key bucket size; default 100
	// Replicas is how many replicas share the limits: while the shared
	// state store cannot be reached each one allows RatePerSec/Replicas.
	// Default 1.
	Replicas int

	ReadHeaderTimeout time.Duration // for a request's headers, and the whole request when not authorised; default 10 s
	ReadTimeout       time.Duration // for an authorised request's body, after its headers; default 60 s
	WriteTimeout      time.Duration // for writing a response (slow readers); default 60 s
	IdleTimeout       time.Duration // keep-alive wait for the next request; default 60 s
	MaxConns          int           // open connections per listener; more are answered 503 and closed; default 4096
	MaxConnsPerIP     int           // open connections per client address; 0 = no limit (behind a proxy all share one)

	AdminToken string // required for /admin/*; empty disables the admin API
	URLSecret  []byte // signs image links; required for response_format=url
	// URLSecretPrevious is the secret before the last rotation: links it
	// signed still open until they expire; new links use URLSecret.
	URLSecretPrevious []byte
	URLTTL            time.Duration // lifetime of image links; default 1 h
	PublicURL         string        // base of image links, e.g. https://img.example.com; default from the request's Host
	// TrustedProxies (IPs or CIDRs) may set X-Forwarded-Host/-Proto;
	// from anyone else those headers are ignored, so a caller cannot choose
	// the host its image links point at. Empty: trust no one.
	TrustedProxies []string

	IdempotencySize  int   // remembered Idempotency-Keys; default 10000
	IdempotencyBytes int64 // response bytes they may hold; default 256 MiB
}

// setDefault sets *v to d when it is not positive (unset).
func setDefault[T int | int64 | float64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

func (c Config) withDefaults() Config {
	setDefault(&c.BodyLimit, 32<<20)
	setDefault(&c.MaxPromptRunes, 4000)
	setDefault(&c.MaxN, 10)
	setDefault(&c.MaxRefs, 8)
	setDefault(&c.MaxRefBytes, 10<<20)
	setDefault(&c.MaxRefPixels, 40_000_000)
	setDefault(&c.DecodeBytes, 256<<20)
	setDefault(&c.DecodeBytesTotal, 1<<30)
	setDefault(&c.RefMaxSide, 2048)
	setDefault(&c.RefCacheSize, 256)
	setDefault(&c.RateBurst, 100)
	setDefault(&c.Replicas, 1)
	setDefault(&c.IdempotencySize, 10000)
	setDefault(&c.IdempotencyBytes, 256<<20)
	setDefault(&c.RequestTimeout, 60*time.Second)
	setDefault(&c.ReadHeaderTimeout, 10*time.Second)
	setDefault(&c.ReadTimeout, 60*time.Second)
	setDefault(&c.WriteTimeout, 60*time.Second)
	setDefault(&c.IdleTimeout, 60*time.Second)
	setDefault(&c.MaxConns, 4096)
	setDefault(&c.RefFetchTimeout, 10*time.Second)
	setDefault(&c.URLTTL, time.Hour)
	setDefault(&c.RatePerSec, 50)
	if c.RatePerSec == math.Inf(1) {
		c.RatePerSec = math.MaxFloat64
	}
	return c
}

// Model is one catalog entry shown by /v1/models and accepted as a pin.
type Model struct {
	Name      string
	Provider  string
	Sizes     []string                      // "WxH" the model offers; empty = any
	CostUSD   map[string]map[string]float64 // price per image by size and tier, listed by GET /v1/models
	Simulated bool                          // served by the simulator (a vendor model without a key)
	// Transparent: the model can answer with a transparent background.
	Transparent bool
	// MaxImages is the most images one request may ask of the model; 0:
	// any n the server accepts.
	MaxImages int
}

// Deps are the parts the server calls. Gateway and Keys are required for
// the image API; the rest may be nil (events discarded, no image links, no
// experiments admin API, no admin policy API).
type Deps struct {
	Gateway     *gateway.Gateway // serves image requests
	Catalog     []Model          // models a request may pin, with their sizes
	Events      Producer
	Keys        KeyStore
	Blobs       BlobStore
	Experiments ExperimentRegistry // experiment admin API; nil = none
	Policy      PolicyAdmin
	Registry    prometheus.Registerer
	Ready       func() error // extra readiness condition (e.g. policy loaded); nil = ready
	// AutoPrice prices "auto" in GET /v1/models from the live policy; nil
	// (or a nil result, no policy yet) lists auto without a price.
	AutoPrice func() *AutoPrice
	// Rates and Idempotency are the state replicas share (redisstate):
	// per-key rate limits and Idempotency-Key records. nil: this
	// replica's memory.
	Rates       gateway.Limiter
	Idempotency IdempotencyStore
	// State reports the shared state store's health; /readyz names it as
	// degraded while it is down (the replica stays ready: each part has
	// its fallback). nil: no shared store.
	State Healthy
	Now   func() time.Time
}

// Server is the public fiber app (the image API), the admin app (the admin
// API, served by ServeAdmin on a listener of its own so the public port
// never answers /admin/*) and their drain switch.
type Server struct {
	*fiber.App
	Admin    *fiber.App
	draining atomic.Bool
	inflight atomic.Int64
	ln       atomic.Pointer[lingerListener]
	adminLn  atomic.Pointer[lingerListener]
	closed   atomic.Bool // Shutdown was called: a later Serve returns at once
}

// Drain makes /readyz fail and new image requests get 503 while in-flight
// requests finish; call it before App.ShutdownWithContext.
func (s *Server) Drain() { s.draining.Store(true) }

// newApp makes a fiber app with the edge limits of cfg. A request whose
// headers do not carry what admits it (authorised) gets a body limit of one
// byte, so fasthttp refuses a larger body before reading it and the error
// handler answers 401/403 (see keyRefusal); an admitted request gets
// ReadTimeout for its body. Headers must arrive within ReadHeaderTimeout:
// a slowloris client is cut off there, and an unauthenticated one never
// gets longer.
func newApp(cfg Config, onError fiber.ErrorHandler, authorised func(*fasthttp.RequestHeader) bool) *fiber.App {
	app := fiber.New(fiber.Config{
		BodyLimit:             cfg.BodyLimit,
		ErrorHandler:          onError,
		DisableStartupMessage: true,
		ReadTimeout:           cfg.ReadHeaderTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		Concurrency:           cfg.MaxConns,
		ReadBufferSize:        16 << 10,
		// Without the check fiber believes X-Forwarded-* from every client.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          cfg.TrustedProxies,
		// Parse multipart in the handler so a malformed form gets our error code.
		DisablePreParseMultipartForm: true,
	})
	app.Server().MaxConnsPerIP = cfg.MaxConnsPerIP
	app.Server().HeaderReceived = func(hd *fasthttp.RequestHeader) fasthttp.RequestConfig {
		if hd.ContentLength() == 0 || hd.ContentLength() == -2 {
			return fasthttp.RequestConfig{} // no body to read
		}
		if !authorised(hd) {
			return fasthttp.RequestConfig{MaxRequestBodySize: 1}
		}
		return fasthttp.RequestConfig{ReadTimeout: cfg.ReadTimeout}
	}
	return app
}

// New builds the public and the admin app with every route (see routes.go).
func New(logger *slog.Logger, cfg Config, deps Deps) *Server {
	cfg = cfg.withDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	srv := &Server{}
	h := newHandlers(logger, cfg, deps, srv)
	rec := recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: func(c *fiber.Ctx, e any) {
		logger.Error("panic", "request_id", requestID(c), "path", c.Path(), "panic", e)
	}})
	srv.App = newApp(cfg, errorHandler(logger, h.keyRefusal), h.hasAPIKey)
	srv.App.Use(rec)
	srv.Admin = newApp(cfg, errorHandler(logger, h.adminRefusal), h.hasAdminToken)
	srv.Admin.Use(rec)
	routes(srv.App, h)
	adminRoutes(srv.Admin, h)
	return srv
}
