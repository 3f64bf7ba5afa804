package console

import (
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
)

// access says who may call a route.
type access int

const (
	public   access = iota // no login (login page, assets, health)
	anyone                 // any logged-in role
	engineer               // engineer or admin
	admin                  // admin only
)

type route struct {
	method, path string
	who          access
	h            fiber.Handler
}

// routeTable lists every route with the role it needs; routes() registers
// each behind its check, and a test walks the table.
func (c *Console) routeTable() []route {
	return []route{
		{"GET", "/healthz", public, func(ctx *fiber.Ctx) error { return ctx.SendString("ok") }},
		{"GET", "/readyz", public, func(ctx *fiber.Ctx) error { return ctx.SendString("ok") }},
		{"GET", "/static/:name", public, c.static},
		{"GET", "/login", public, c.loginPage},
		{"POST", "/login", public, c.login},

		{"GET", "/", anyone, c.home},
		{"POST", "/logout", anyone, c.logout},
		{"GET", "/blob/:key", anyone, c.blob},
		{"GET", "/review", anyone, c.reviewPage},
		{"GET", "/review/next.json", anyone, c.reviewNext},
		{"POST", "/review/submit", anyone, c.reviewSubmit},
		{"POST", "/review/skip", anyone, c.reviewSkip},
		{"GET", "/pairwise", anyone, c.pairwisePage},
		{"POST", "/pairwise/submit", anyone, c.pairwiseSubmit},

		{"GET", "/quality", engineer, c.qualityPage},
		{"GET", "/dashboards", engineer, c.dashboardsPage},
		{"GET", "/dashboards/panel/:id", engineer, c.panelSVG},
		{"GET", "/dashboards/grafana.json", engineer, c.grafanaJSON},

		{"GET", "/experiments", engineer, c.experimentsPage},
		{"POST", "/experiments", engineer, c.experimentCreate},
		{"POST", "/experiments/check", engineer, c.experimentCheck},
		{"GET", "/experiments/:id", engineer, c.experimentPage},
		{"GET", "/experiments/:id/effect.svg", engineer, c.experimentEffectSVG},
		{"GET", "/experiments/:id/weights.svg", engineer, c.experimentWeightsSVG},
		{"POST", "/experiments/:id/:action", engineer, c.experimentAction},

		{"GET", "/policy", engineer, c.policyPage},
		{"POST", "/policy/push", engineer, c.policyPush},
		{"POST", "/policy/rollback", engineer, c.policyRollback},

		{"GET", "/admin", admin, c.adminPage},
		{"POST", "/admin/users", admin, c.adminCreateUser},
	}
}

// loginFormLimit bounds how many login forms one client fetches without a
// session cookie: each stores a short session (its CSRF token). It runs
// before the CSRF middleware, which stores it.
func (c *Console) loginFormLimit() fiber.Handler {
	return limiter.New(limiter.Config{
		Max: 60, Expiration: time.Minute, KeyGenerator: c.clientIP,
		Next: func(ctx *fiber.Ctx) bool {
			return ctx.Path() != "/login" || ctx.Method() != fiber.MethodGet || ctx.Cookies("routelab_session") != ""
		},
		LimitReached: func(ctx *fiber.Ctx) error {
			return &FieldError{Code: "rate_limited", Message: "too many requests; wait a minute", Status: fiber.StatusTooManyRequests}
		},
	})
}

func (c *Console) routes() {
	// Per client (clientIP: behind a trusted proxy, the address it saw),
	// so one proxy's address does not pool every user's attempts.
	loginLimit := limiter.New(limiter.Config{
		Max: 20, Expiration: time.Minute, KeyGenerator: c.clientIP,
		LimitReached: func(ctx *fiber.Ctx) error {
			return &FieldError{Code: "rate_limited", Message: "too many login attempts; wait a minute", Status: fiber.StatusTooManyRequests}
		},
	})
	for _, r := range c.routeTable() {
		handlers := []fiber.Handler{c.authenticate(r.who)}
		if r.path == "/login" && r.method == fiber.MethodPost {
			handlers = append(handlers, loginLimit)
		}
		handlers = append(handlers, r.h)
		c.app.Add(r.method, r.path, handlers...)
	}
	c.app.Use(func(ctx *fiber.Ctx) error { return errNotFound })
}
