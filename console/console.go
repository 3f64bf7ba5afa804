// Package console is routelab's web app for people: reviewers score sampled
// outputs and compare two outputs blind; engineers watch dashboards,
// experiments and policies; admins manage accounts. It is a fiber app with
// its templates and assets embedded, server-rendered HTML with small
// same-origin scripts (a strict Content-Security-Policy forbids inline
// script), session cookies, CSRF tokens on every state change and a role
// check on every route.
package console

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/csrf"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/session"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/routelab/routelab/evaluator/review"
	"golang.org/x/crypto/bcrypt"

	"github.com/routelab/routelab/dashboards"
	"github.com/routelab/routelab/events"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// ContentSecurityPolicy is sent with every HTML response: scripts and styles
// only from this origin as files, no inline script, no plugins, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Config tunes the console.
type Config struct {
	// Secure marks cookies Secure; set when the console is served over TLS.
	Secure bool
	// SessionTTL is how long a login lasts without activity; default 12h.
	SessionTTL time.Duration
	// LoginFormTTL is how long the session of a visitor who has not logged
	// in (it holds the login form's CSRF token) is kept; default 15m. Only
	// GET /login makes one: other cookie-less GETs keep no state.
	LoginFormTTL time.Duration
	// TrustedProxies (IPs or CIDRs) may say who the client is in
	// X-Forwarded-For; login attempts are limited per client so found.
	// Empty: the connection's peer is the client.
	TrustedProxies []string
	// OverlapRate is the share of review items scored by several reviewers
	// for agreement; default 0.1. OverlapRaters is how many; default 3.
	OverlapRate   float64
	OverlapRaters int
	// LeaseTTL is how long a review item stays reserved; default 10m.
	LeaseTTL time.Duration
	// Seed seeds queue orders and pairwise sides.
	Seed uint64
	// Tenant is written on review events when the item carries none.
	Tenant string
	// PanelCacheTTL keeps a dashboard panel's result for repeated views of
	// the same filter (time range rounded to the minute); default 30s,
	// negative disables the cache.
	PanelCacheTTL time.Duration
}

// ReviewSink takes review events on their way to Kafka; Emit must not block
// on the broker (events/kafka.Producer queues them).
type ReviewSink interface {
	Emit(ctx context.Context, r events.Review) error
}

// Blobs reads sampled image bytes by content key.
type Blobs interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

// Deps are the console's collaborators; nil ones turn their pages into a
// clear "not configured" message.
type Deps struct {
	Logger   *slog.Logger
	Users    UserStore
	Data     *Data // ClickHouse reads
	Reviews  ReviewSink
	Blobs    Blobs
	Control  Control        // experiments and policies through serve's admin API
	Policies PolicyVersions // policy versions for history and diff (routelab.policies)
	Now      func() time.Time
}

// Console is the app plus its in-memory review state.
type Console struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	pages    map[string]*template.Template
	sessions *session.Store
	app      *fiber.App
	proxies  []netip.Prefix
	// noUserHash is compared with the password of a name that has no
	// account, so a login costs one bcrypt comparison either way and its
	// time does not tell which names exist.
	noUserHash []byte

	mu        sync.Mutex
	scores    *review.Queue
	pairs     *review.Queue
	itemCache map[string]Output     // request id -> output, for leased items
	pairCache map[string]Pair       // pair id -> pair
	revealed  map[string]PairReveal // reviewer -> last pairwise answer, to show names
	loadedAt  time.Time

	panels *expirable.LRU[string, dashboards.Frame] // nil: no cache
	// week caches the last week's traffic for the experiment form, which
	// checks after every pause in typing: one ClickHouse scan a minute.
	week *expirable.LRU[struct{}, weekTraffic]
}

// New builds the console app. Call Refresh (or Run) to load review items.
func New(cfg Config, deps Deps) (*Console, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.LoginFormTTL <= 0 {
		cfg.LoginFormTTL = 15 * time.Minute
	}
	if cfg.OverlapRate == 0 {
		cfg.OverlapRate = 0.1
	}
	if cfg.OverlapRaters == 0 {
		cfg.OverlapRaters = 3
	}
	if cfg.Tenant == "" {
		cfg.Tenant = "console"
	}
	if cfg.PanelCacheTTL == 0 {
		cfg.PanelCacheTTL = 30 * time.Second
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	c := &Console{
		cfg: cfg, deps: deps, log: deps.Logger.With("component", "console"),
		itemCache: map[string]Output{}, pairCache: map[string]Pair{},
		revealed: map[string]PairReveal{},
	}
	qc := review.QueueConfig{LeaseTTL: cfg.LeaseTTL, OverlapRaters: cfg.OverlapRaters, Seed: cfg.Seed, Now: deps.Now}
	c.scores = review.NewQueue(qc)
	qc.Seed++
	c.pairs = review.NewQueue(qc)
	c.week = expirable.NewLRU[struct{}, weekTraffic](1, nil, time.Minute)
	if cfg.PanelCacheTTL > 0 {
		c.panels = expirable.NewLRU[string, dashboards.Frame](512, nil, cfg.PanelCacheTTL)
	}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	proxies, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	c.proxies = proxies
	if c.noUserHash, err = bcrypt.GenerateFromPassword([]byte("no such user"), passwordCost); err != nil {
		return nil, err
	}
	// The store's default lifetime is the login form's: a session that
	// carries a user is saved with SessionTTL (authenticate, login).
	c.sessions = session.New(session.Config{
		Expiration:     cfg.LoginFormTTL,
		KeyLookup:      "cookie:routelab_session",
		CookieHTTPOnly: true,
		CookieSecure:   cfg.Secure,
		CookieSameSite: "Strict",
		CookiePath:     "/",
	})
	c.app = fiber.New(fiber.Config{
		AppName:               "routelab console",
		DisableStartupMessage: true,
		ErrorHandler:          c.errorHandler,
		BodyLimit:             4 << 20,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           60 * time.Second,
		// X-Forwarded-* count only from TrustedProxies (fiber believes
		// them from everyone without the check).
		EnableTrustedProxyCheck: true,
		TrustedProxies:          cfg.TrustedProxies,
	})
	c.app.Use(recover.New())
	c.app.Use(securityHeaders)
	c.app.Use(c.loginFormLimit())
	c.app.Use(csrf.New(csrf.Config{
		// A cookie-less GET needs no token (it is redirected to /login or
		// shown a public page) and must not cost a stored session; only
		// the login form hands one out.
		Next: func(ctx *fiber.Ctx) bool {
			safe := ctx.Method() == fiber.MethodGet || ctx.Method() == fiber.MethodHead
			return safe && ctx.Cookies("routelab_session") == "" && ctx.Path() != "/login"
		},
		Session:        c.sessions,
		SessionKey:     "csrf",
		ContextKey:     "csrf",
		CookieName:     "routelab_csrf",
		CookieHTTPOnly: true,
		CookieSecure:   cfg.Secure,
		CookieSameSite: "Strict",
		Expiration:     cfg.SessionTTL,
		Extractor:      csrfFromHeaderOrForm,
		ErrorHandler: func(ctx *fiber.Ctx, err error) error {
			return &FieldError{Code: "csrf", Field: "_csrf", Message: "missing or stale CSRF token; reload the page", Status: fiber.StatusForbidden}
		},
	}))
	c.routes()
	return c, nil
}

// App is the fiber app to listen with.
func (c *Console) App() *fiber.App { return c.app }

func csrfFromHeaderOrForm(ctx *fiber.Ctx) (string, error) {
	if t := ctx.Get(csrf.HeaderName); t != "" {
		return t, nil
	}
	if t := ctx.FormValue("_csrf"); t != "" {
		return t, nil
	}
	return "", csrf.ErrTokenNotFound
}

func securityHeaders(ctx *fiber.Ctx) error {
	ctx.Set("Content-Security-Policy", ContentSecurityPolicy)
	ctx.Set("X-Content-Type-Options", "nosniff")
	ctx.Set("X-Frame-Options", "DENY")
	ctx.Set("Referrer-Policy", "same-origin")
	ctx.Set("Cross-Origin-Opener-Policy", "same-origin")
	return ctx.Next()
}

func (c *Console) parseTemplates() error {
	c.pages = map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	funcs := template.FuncMap{
		"join": strings.Join,
		"pct":  func(f float64) string { return trimFloat(100*f, 1) + "%" },
		"f":    func(f float64, d int) string { return trimFloat(f, d) },
		"add":  func(a, b int) int { return a + b },
		"list": func(xs ...string) []string { return xs },
		"fp": func(p *float64, d int) string {
			if p == nil {
				return "-"
			}
			return trimFloat(*p, d)
		},
		"fpct": func(p *float64) string {
			if p == nil {
				return "-"
			}
			return trimFloat(100**p, 1) + "%"
		},
		"seq": func(lo, hi int) []int {
			var out []int
			for i := lo; i <= hi; i++ {
				out = append(out, i)
			}
			return out
		},
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return err
		}
		c.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return nil
}

// page is what every template gets.
type page struct {
	Title  string
	User   *User
	CSRF   string
	Nav    []navItem
	Active string
	Script string // one page script under /static/
	Data   any
}

type navItem struct {
	Path, Label string
}

func (c *Console) render(ctx *fiber.Ctx, name, title string, data any) error {
	t := c.pages[name]
	if t == nil {
		return fiber.NewError(fiber.StatusInternalServerError, "no template "+name)
	}
	p := page{Title: title, Data: data, Active: "/" + strings.Split(strings.TrimPrefix(ctx.Path(), "/"), "/")[0]}
	if tok, ok := ctx.Locals("csrf").(string); ok {
		p.CSRF = tok
	}
	if u, ok := ctx.Locals("user").(User); ok {
		p.User = &u
		p.Nav = navFor(u.Role)
	}
	switch name {
	case "review", "pairwise":
		p.Script = name + ".js"
	case "experiments":
		p.Script = "experimentform.js"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return err
	}
	ctx.Type("html", "utf-8")
	return ctx.Send(buf.Bytes())
}

func navFor(r Role) []navItem {
	nav := []navItem{{"/review", "Review"}, {"/pairwise", "Pairwise"}}
	if r == RoleEngineer || r == RoleAdmin {
		nav = append(nav, navItem{"/quality", "Reviewers"}, navItem{"/dashboards", "Dashboards"},
			navItem{"/experiments", "Experiments"}, navItem{"/policy", "Policy"})
	}
	if r == RoleAdmin {
		nav = append(nav, navItem{"/admin", "Admin"})
	}
	return nav
}

func (c *Console) errorHandler(ctx *fiber.Ctx, err error) error {
	status, body, internal := httpError(err)
	if internal {
		c.log.Error("request failed", "method", ctx.Method(), "path", ctx.Path(), "err", err)
	}
	ctx.Status(status)
	if wantsJSON(ctx) {
		return ctx.JSON(body)
	}
	e := body["error"].(fiber.Map)
	if rerr := c.render(ctx, "error", "Error", e); rerr != nil {
		return ctx.JSON(body)
	}
	return nil
}

func wantsJSON(ctx *fiber.Ctx) bool {
	return strings.HasSuffix(ctx.Path(), ".json") || strings.Contains(ctx.Get("Accept"), "application/json") ||
		strings.HasPrefix(ctx.Get("Content-Type"), "application/json")
}

func trimFloat(f float64, d int) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', d, 64)
}
