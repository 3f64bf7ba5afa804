package console_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/routelab/routelab/console"
)

// TestLoginNextStaysOnSite: the post-login redirect keeps a local path and
// turns anything that a browser could read as another site (tabs and
// newlines it drops, backslashes it reads as slashes, a second slash,
// a scheme) or that could split the Location header into "/".
func TestLoginNextStaysOnSite(t *testing.T) {
	_, base := mustConsole(t, console.Deps{})
	tests := []struct{ give, want string }{
		{"/dashboards?tenant=acme", "/dashboards?tenant=acme"},
		{"/experiments/exp_1", "/experiments/exp_1"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/\r\nX-Injected: 1", "/"},
		{"//evil.example", "/"},
		{"/\\evil.example", "/"},
		{"/\\/evil.example", "/"},
		{"https://evil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/ /evil.example", "/"},
		{"/\x00", "/"},
		{"/caf\u00e9", "/"},
		{"evil.example", "/"},
	}
	for _, tt := range tests {
		cl := newClient(t, base)
		cl.get("/login")
		form := url.Values{"name": {"rev"}, "password": {"rev-password"}, "_csrf": {cl.csrf}, "next": {tt.give}}
		resp, body := cl.do("POST", "/login", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login next=%q = %d %s", tt.give, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Location"); got != tt.want || resp.Header.Get("X-Injected") != "" {
			t.Errorf("login next=%q: Location %q (X-Injected %q), want %q", tt.give, got, resp.Header.Get("X-Injected"), tt.want)
		}
	}
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, ck := range resp.Cookies() {
		if ck.Name == "routelab_session" {
			return ck
		}
	}
	return nil
}

// TestCookielessGETsKeepNoSession: a visitor without a cookie gets no
// stored session from any page but the login form, whose session lasts
// LoginFormTTL; a login lasts SessionTTL, renewed as it is used.
func TestCookielessGETsKeepNoSession(t *testing.T) {
	_, base := mustConsole(t, console.Deps{}, console.Config{Seed: 1, SessionTTL: 12 * time.Hour, LoginFormTTL: 10 * time.Minute})
	for _, p := range []string{"/", "/review", "/dashboards", "/admin", "/nope", "/healthz", "/static/app.css"} {
		resp, _ := newClient(t, base).get(p)
		if ck := sessionCookie(resp); ck != nil {
			t.Errorf("cookie-less GET %s stored a session (cookie max-age %d)", p, ck.MaxAge)
		}
	}
	cl := newClient(t, base)
	resp, _ := cl.get("/login")
	if ck := sessionCookie(resp); ck == nil || ck.MaxAge <= 0 || ck.MaxAge > 600 {
		t.Errorf("GET /login session cookie = %v, want one of at most 10 minutes", ck)
	}
	form := url.Values{"name": {"rev"}, "password": {"rev-password"}, "_csrf": {cl.csrf}}
	resp, _ = cl.do("POST", "/login", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	if ck := sessionCookie(resp); ck == nil || ck.MaxAge < 11*3600 {
		t.Errorf("login session cookie = %v, want 12 hours", ck)
	}
	resp, _ = cl.get("/review")
	if ck := sessionCookie(resp); ck == nil || ck.MaxAge < 11*3600 {
		t.Errorf("session cookie on use = %v, want 12 hours", ck)
	}
}

// TestLoginLimitPerClient: failed logins are limited per client: the peer,
// or behind a trusted proxy the address the proxy saw (not one the client
// wrote into X-Forwarded-For), so one client's attempts do not lock out
// everyone behind the same proxy.
func TestLoginLimitPerClient(t *testing.T) {
	_, base := mustConsole(t, console.Deps{}, console.Config{Seed: 1, TrustedProxies: []string{"127.0.0.1"}})
	cl := newClient(t, base)
	cl.get("/login")
	attempt := func(xff string) int {
		t.Helper()
		form := url.Values{"name": {"rev"}, "password": {"wrong-password"}, "_csrf": {cl.csrf}}
		req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := cl.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 20 {
		if st := attempt("203.0.113.5"); st != http.StatusUnauthorized {
			t.Fatalf("attempt %d = %d, want 401", i+1, st)
		}
	}
	tests := []struct {
		xff  string
		want int
	}{
		{"203.0.113.5", http.StatusTooManyRequests},
		{"198.51.100.9, 203.0.113.5", http.StatusTooManyRequests}, // a forged hop left of the proxy's
		{"203.0.113.6", http.StatusUnauthorized},                  // another client behind the proxy
	}
	for _, tt := range tests {
		if st := attempt(tt.xff); st != tt.want {
			t.Errorf("login with X-Forwarded-For %q after 20 failures of 203.0.113.5 = %d, want %d", tt.xff, st, tt.want)
		}
	}
}

// TestLoginTimeHidesNames: a login for a name without an account costs a
// bcrypt comparison like a wrong password does, so its time does not tell
// which names exist. (The margin is wide: without the comparison an
// unknown name answers in well under a hundredth of the time.)
func TestLoginTimeHidesNames(t *testing.T) {
	// At the tests' cheap bcrypt cost a comparison is about as long as the
	// rest of a login, which would hide a missing one: use the real cost.
	defer console.SetPasswordCost(bcrypt.DefaultCost)()
	_, base := mustConsole(t, console.Deps{})
	cl := newClient(t, base)
	cl.get("/login")
	median := func(name string) time.Duration {
		var ds []time.Duration
		for range 5 {
			form := url.Values{"name": {name}, "password": {"wrong-password"}, "_csrf": {cl.csrf}}
			start := time.Now()
			resp, _ := cl.do("POST", "/login", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
			ds = append(ds, time.Since(start))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("login %s = %d, want 401", name, resp.StatusCode)
			}
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	known, unknown := median("rev"), median("nobody-here")
	if unknown < known/4 {
		t.Errorf("login of an unknown name takes %v, of a known one %v: the time tells names apart", unknown, known)
	}
}
