package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

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
