package console

import (
	"errors"
	"fmt"
	"mime"
	"net/netip"
	"net/url"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"
)

// authenticate loads the session's user and enforces who may call the
// route. Pages redirect an anonymous visitor to /login; JSON and POST
// callers get 401. A logged-in user without the role gets 403.
func (c *Console) authenticate(who access) fiber.Handler {
	return func(ctx *fiber.Ctx) error {
		sess, err := c.sessions.Get(ctx)
		if err != nil {
			return err
		}
		name, _ := sess.Get("user").(string)
		if name != "" {
			u, err := c.deps.Users.Lookup(ctx.UserContext(), name)
			switch {
			case err == nil:
				ctx.Locals("user", u)
			case errors.Is(err, ErrUserNotFound):
				name = "" // account removed: the session is worthless
			default:
				return err
			}
		}
		if name != "" {
			// A login lasts SessionTTL from its last use; the store's
			// default (and the CSRF middleware's save) is the short
			// LoginFormTTL of anonymous sessions.
			sess.SetExpiry(c.cfg.SessionTTL)
			if err := sess.Save(); err != nil {
				return err
			}
		}
		if who == public {
			return ctx.Next()
		}
		if name == "" {
			if ctx.Method() == fiber.MethodGet && !wantsJSON(ctx) {
				return ctx.Redirect("/login?next="+safeNext(ctx.OriginalURL()), fiber.StatusSeeOther)
			}
			return &FieldError{Code: "unauthenticated", Message: "log in first", Status: fiber.StatusUnauthorized}
		}
		u := ctx.Locals("user").(User)
		if !allowed(u.Role, who) {
			return errForbidden
		}
		return ctx.Next()
	}
}

func allowed(r Role, who access) bool {
	switch who {
	case public, anyone:
		return r.Valid()
	case engineer:
		return r == RoleEngineer || r == RoleAdmin
	case admin:
		return r == RoleAdmin
	}
	return false
}

// safeNext keeps a post-login redirect on this site: a path starting with
// one "/", printable ASCII only. Browsers drop tabs and newlines from a URL
// and read a backslash as "/", so "/<TAB>/evil.example" or "/<BACKSLASH>evil.example"
// would become the network path "//evil.example"; a CR or LF would also
// split the Location header. Anything else is "/".
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || len(s) > 2048 {
		return "/"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return s
}

func currentUser(ctx *fiber.Ctx) User {
	u, _ := ctx.Locals("user").(User)
	return u
}

func (c *Console) loginPage(ctx *fiber.Ctx) error {
	if _, ok := ctx.Locals("user").(User); ok {
		return ctx.Redirect("/", fiber.StatusSeeOther)
	}
	return c.render(ctx, "login", "Log in", fiber.Map{"Next": safeNext(ctx.Query("next", "/"))})
}

func (c *Console) login(ctx *fiber.Ctx) error {
	name := strings.TrimSpace(ctx.FormValue("name"))
	pw := ctx.FormValue("password")
	next := safeNext(ctx.FormValue("next", "/"))
	u, err := c.deps.Users.Lookup(ctx.UserContext(), name)
	if err != nil && !errors.Is(err, ErrUserNotFound) {
		return err
	}
	if err != nil {
		// Spend the bcrypt comparison a real account would cost.
		_ = bcrypt.CompareHashAndPassword(c.noUserHash, []byte(pw))
	}
	if err != nil || !u.CheckPassword(pw) {
		ctx.Status(fiber.StatusUnauthorized)
		return c.render(ctx, "login", "Log in", fiber.Map{"Next": next, "Error": "Wrong name or password.", "Name": name})
	}
	sess, err := c.sessions.Get(ctx)
	if err != nil {
		return err
	}
	// A new session id at login defeats session fixation.
	if err := sess.Regenerate(); err != nil {
		return err
	}
	sess.Set("user", u.Name)
	sess.SetExpiry(c.cfg.SessionTTL)
	if err := sess.Save(); err != nil {
		return err
	}
	c.log.Info("login", "user", u.Name, "role", u.Role)
	return ctx.Redirect(next, fiber.StatusSeeOther)
}

func (c *Console) logout(ctx *fiber.Ctx) error {
	sess, err := c.sessions.Get(ctx)
	if err != nil {
		return err
	}
	if err := sess.Destroy(); err != nil {
		return err
	}
	return ctx.Redirect("/login", fiber.StatusSeeOther)
}

func (c *Console) home(ctx *fiber.Ctx) error {
	u := currentUser(ctx)
	if u.Role == RoleReviewer {
		return ctx.Redirect("/review", fiber.StatusSeeOther)
	}
	return ctx.Redirect("/dashboards", fiber.StatusSeeOther)
}

func (c *Console) static(ctx *fiber.Ctx) error {
	name := path.Base(ctx.Params("name"))
	b, err := assetFS.ReadFile("assets/" + name)
	if err != nil {
		return errNotFound
	}
	ctx.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	ctx.Set("Cache-Control", "no-cache")
	return ctx.Send(b)
}

func (c *Console) blob(ctx *fiber.Ctx) error {
	if c.deps.Blobs == nil {
		return errNotFound
	}
	key := ctx.Params("key")
	if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
		return &FieldError{Code: "bad_key", Field: "key", Message: "a blob key is 64 hex digits"}
	}
	b, err := c.deps.Blobs.Get(ctx.UserContext(), key)
	if err != nil {
		return errNotFound
	}
	ct := "application/octet-stream"
	switch {
	case len(b) > 8 && string(b[1:4]) == "PNG":
		ct = "image/png"
	case len(b) > 3 && b[0] == 0xFF && b[1] == 0xD8:
		ct = "image/jpeg"
	case len(b) > 12 && string(b[8:12]) == "WEBP":
		ct = "image/webp"
	}
	ctx.Set("Content-Type", ct)
	ctx.Set("Cache-Control", "private, max-age=86400, immutable")
	return ctx.Send(b)
}

func (c *Console) adminPage(ctx *fiber.Ctx) error {
	users, err := c.deps.Users.List(ctx.UserContext())
	if err != nil {
		return err
	}
	return c.render(ctx, "admin", "Admin", fiber.Map{"Users": users, "Created": ctx.Query("created")})
}

func (c *Console) adminCreateUser(ctx *fiber.Ctx) error {
	u, err := NewUser(strings.TrimSpace(ctx.FormValue("name")), Role(ctx.FormValue("role")), ctx.FormValue("password"), c.deps.Now())
	if err != nil {
		return err
	}
	if err := c.deps.Users.Create(ctx.UserContext(), u); err != nil {
		if errors.Is(err, ErrUserExists) {
			return &FieldError{Code: "user_exists", Field: "name", Message: "that name is taken", Status: fiber.StatusConflict}
		}
		return err
	}
	c.log.Info("user created", "user", u.Name, "role", u.Role, "by", currentUser(ctx).Name)
	return ctx.Redirect("/admin?created="+u.Name, fiber.StatusSeeOther)
}

// clientIP is who a login attempt is counted against: the connection's
// peer, or, when the peer is a trusted proxy, the last address in
// X-Forwarded-For that is not a trusted proxy (the first one a proxy of
// ours saw; entries left of it are the client's to forge).
func (c *Console) clientIP(ctx *fiber.Ctx) string {
	peer := ctx.Context().RemoteIP().String()
	if !c.trusted(peer) {
		return peer
	}
	hops := strings.Split(ctx.Get(fiber.HeaderXForwardedFor), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if _, err := netip.ParseAddr(hop); err != nil {
			break
		}
		if !c.trusted(hop) {
			return hop
		}
	}
	return peer
}

func (c *Console) trusted(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, p := range c.proxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// parsePrefixes reads IPs and CIDRs.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want an IP or a CIDR", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
