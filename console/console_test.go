package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/routelab/routelab/console"
	"github.com/routelab/routelab/experiments"
)

// testUsers are seeded in every test console; password = name + "-password".
var testUsers = map[string]console.Role{"ada": console.RoleAdmin, "eng": console.RoleEngineer, "rev": console.RoleReviewer, "xss": console.RoleReviewer}

func mustUsers(t testing.TB) console.UserStore {
	t.Helper()
	s := console.NewFileUsers(filepath.Join(t.TempDir(), "users.json"))
	for n, r := range testUsers {
		if _, err := console.EnsureUser(context.Background(), s, n, r, n+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// mustServe serves c on a real 127.0.0.1 listener and returns its URL.
func mustServe(t testing.TB, c *console.Console) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go c.App().Listener(ln)
	t.Cleanup(func() { c.App().Shutdown() })
	return "http://" + ln.Addr().String()
}

func mustConsole(t testing.TB, deps console.Deps, cfg ...console.Config) (*console.Console, string) {
	t.Helper()
	if deps.Users == nil {
		deps.Users = mustUsers(t)
	}
	conf := console.Config{Seed: 1}
	if len(cfg) > 0 {
		conf = cfg[0]
	}
	c, err := console.New(conf, deps)
	if err != nil {
		t.Fatal(err)
	}
	return c, mustServe(t, c)
}

// client is a browser-like session: cookies, no redirects followed.
type client struct {
	t    testing.TB
	base string
	http *http.Client
	csrf string
}

func newClient(t testing.TB, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var metaCSRF = regexp.MustCompile(`<meta name="csrf" content="([^"]*)">`)

func (c *client) do(method, path string, body io.Reader, ctype string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.csrf != "" && method != "GET" {
		req.Header.Set("X-Csrf-Token", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := metaCSRF.FindSubmatch(b); m != nil && len(m[1]) > 0 {
		c.csrf = string(m[1])
	}
	return resp, string(b)
}

func (c *client) get(path string) (*http.Response, string) { return c.do("GET", path, nil, "") }

func (c *client) postJSON(path, body string) (*http.Response, string) {
	return c.do("POST", path, strings.NewReader(body), "application/json")
}

func (c *client) login(name string) {
	c.t.Helper()
	c.get("/login")
	form := url.Values{"name": {name}, "password": {name + "-password"}, "_csrf": {c.csrf}}
	resp, body := c.do("POST", "/login", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("login %s = %d %s", name, resp.StatusCode, body)
	}
	c.get("/review") // fresh CSRF token for the new session
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	_, base := mustConsole(t, console.Deps{})
	cl := newClient(t, base)
	for _, p := range []string{"/", "/login", "/static/app.css", "/nope", "/admin"} {
		resp, _ := cl.get(p)
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy = %q", p, csp)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: no X-Frame-Options DENY", p)
		}
	}
}

func TestLoginSessionCookie(t *testing.T) {
	_, base := mustConsole(t, console.Deps{})
	cl := newClient(t, base)
	cl.get("/login")
	form := url.Values{"name": {"rev"}, "password": {"rev-password"}, "_csrf": {cl.csrf}}
	resp, _ := cl.do("POST", "/login", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "routelab_session" {
			sess = ck
		}
	}
	if sess == nil {
		t.Fatalf("login set no session cookie")
	}
	if !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie HttpOnly=%v SameSite=%v, want HttpOnly and Strict", sess.HttpOnly, sess.SameSite)
	}
	// Wrong password and missing CSRF token are refused.
	bad := newClient(t, base)
	bad.get("/login")
	form = url.Values{"name": {"rev"}, "password": {"nope-nope"}, "_csrf": {bad.csrf}}
	if resp, _ := bad.do("POST", "/login", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a wrong password = %d, want 401", resp.StatusCode)
	}
	nocsrf := newClient(t, base)
	form = url.Values{"name": {"rev"}, "password": {"rev-password"}}
	if resp, _ := nocsrf.do("POST", "/login", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without a CSRF token = %d, want 403", resp.StatusCode)
	}
}

// TestEveryRouteChecksRole walks the fiber routes: each must be in the
// console's access table, refuse anonymous callers unless public, and
// refuse roles below the one it needs.
func TestEveryRouteChecksRole(t *testing.T) {
	c, base := mustConsole(t, console.Deps{})
	access := c.Access()
	anon := newClient(t, base)
	anon.get("/login") // a CSRF token, so refusals come from the role check
	rev, eng := newClient(t, base), newClient(t, base)
	rev.login("rev")
	eng.login("eng")
	checked := 0
	fill := strings.NewReplacer(":id", "x", ":key", strings.Repeat("a", 64), ":name", "app.css")
	for _, r := range c.App().GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" || r.Path == "/" && r.Method != "GET" {
			continue
		}
		who, ok := access[r.Method+" "+r.Path]
		if !ok {
			t.Errorf("%s %s is not in the access table", r.Method, r.Path)
			continue
		}
		p := fill.Replace(r.Path)
		call := func(cl *client) int {
			resp, _ := cl.do(r.Method, p, strings.NewReader("{}"), "application/json")
			return resp.StatusCode
		}
		if who == "public" {
			continue
		}
		checked++
		if got := call(anon); got != http.StatusUnauthorized && got != http.StatusSeeOther {
			t.Errorf("anonymous %s %s = %d, want 401 or 303", r.Method, p, got)
		}
		if who == "engineer" || who == "admin" {
			if got := call(rev); got != http.StatusForbidden {
				t.Errorf("reviewer %s %s = %d, want 403", r.Method, p, got)
			}
		}
		if who == "admin" {
			if got := call(eng); got != http.StatusForbidden {
				t.Errorf("engineer %s %s = %d, want 403", r.Method, p, got)
			}
		}
	}
	if checked < len(access)/2 {
		t.Errorf("checked %d protected routes of %d in the table", checked, len(access))
	}
}

func TestAdminCreatesUser(t *testing.T) {
	users := mustUsers(t)
	_, base := mustConsole(t, console.Deps{Users: users})
	adm := newClient(t, base)
	adm.login("ada")
	form := url.Values{"name": {"newbie"}, "role": {"reviewer"}, "password": {"newbie-password"}, "_csrf": {adm.csrf}}
	resp, body := adm.do("POST", "/admin/users", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create user = %d %s", resp.StatusCode, body)
	}
	n := newClient(t, base)
	n.login("newbie")
	form = url.Values{"name": {"x"}, "role": {"root"}, "password": {"short"}, "_csrf": {adm.csrf}}
	resp, body = adm.do("POST", "/admin/users", strings.NewReader(form.Encode()), "application/json")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"code":"bad_name"`) {
		t.Errorf("create bad user = %d %s, want 400 bad_name", resp.StatusCode, body)
	}
}

// startExperiment creates an experiment from its JSON spec through the
// console and starts it, as an engineer does from the experiment's page.
func startExperiment(t testing.TB, eng *client, spec string) experiments.Spec {
	t.Helper()
	resp, body := eng.postJSON("/experiments", spec)
	if resp.StatusCode != 201 {
		t.Fatalf("create experiment = %d %s", resp.StatusCode, body)
	}
	var s experiments.Spec
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	eng.get("/experiments/" + s.ID) // a CSRF token
	if resp, body := eng.do("POST", "/experiments/"+s.ID+"/start", nil, "application/x-www-form-urlencoded"); resp.StatusCode != 303 {
		t.Fatalf("start = %d %s", resp.StatusCode, body)
	}
	return s
}
