package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/server"
)

// TestAdminAPIOnlyOnAdminListener: the public listener does not know
// /admin/* even with the admin token (404; 401 for a request with a body,
// refused before routing since the admin token is no API key); the admin
// listener serves it.
func TestAdminAPIOnlyOnAdminListener(t *testing.T) {
	e := mustStart(t, nil)
	admin := map[string]string{"Authorization": "Bearer " + e.admin, "Content-Type": "application/json"}
	tests := []struct {
		method, path, body string
	}{
		{"GET", "/admin/keys", ""},
		{"POST", "/admin/keys", `{"tenant":"evil"}`},
		{"GET", "/admin/policy", ""},
		{"GET", "/admin/experiments", ""},
	}
	for _, tt := range tests {
		if r := do(t, tt.method, e.url+tt.path, admin, strings.NewReader(tt.body)); r.status != 404 && r.status != 401 {
			t.Errorf("%s %s on the public listener = %d, want 404 (401 with a body)", tt.method, tt.path, r.status)
		}
	}
	if r := do(t, "GET", e.adminURL+"/admin/keys", admin, nil); r.status != 200 {
		t.Errorf("GET /admin/keys on the admin listener = %d, want 200: %s", r.status, r.body)
	}
}

// TestMetricsAndReadinessReasonsNotPublic: /metrics and the reason a
// replica is not ready are on the admin listener only; the public /readyz
// answers with the status alone.
func TestMetricsAndReadinessReasonsNotPublic(t *testing.T) {
	e := mustStart(t, func(su *setup) {
		d := &su.deps
		d.Ready = func() error { return errors.New("no policy from kafka-internal-7:9092") }
	})
	if r := do(t, "GET", e.url+"/metrics", nil, nil); r.status != 404 {
		t.Errorf("public /metrics = %d, want 404", r.status)
	}
	if r := do(t, "GET", e.url+"/readyz", nil, nil); r.status != 503 || bytes.Contains(r.body, []byte("kafka-internal")) || bytes.Contains(r.body, []byte("reason")) {
		t.Errorf("public /readyz = %d %s, want 503 without the reason", r.status, r.body)
	}
	if r := do(t, "GET", e.adminURL+"/readyz", nil, nil); r.status != 503 || !bytes.Contains(r.body, []byte("kafka-internal-7")) {
		t.Errorf("admin /readyz = %d %s, want 503 with the reason", r.status, r.body)
	}
	if r := do(t, "GET", e.adminURL+"/metrics", nil, nil); r.status != 200 || !bytes.Contains(r.body, []byte("routelab_")) {
		t.Errorf("admin /metrics = %d, want 200 with routelab metrics", r.status)
	}
}

// TestAdminKeysNeverShowHashes: creating and listing keys shows ids,
// tenants and the secret once, never the stored hash.
func TestAdminKeysNeverShowHashes(t *testing.T) {
	e := mustStart(t, nil)
	admin := map[string]string{"Authorization": "Bearer " + e.admin, "Content-Type": "application/json"}
	created := do(t, "POST", e.adminURL+"/admin/keys", admin, strings.NewReader(`{"tenant":"globex"}`))
	var k struct{ Secret string }
	if err := json.Unmarshal(created.body, &k); created.status != 201 || err != nil || k.Secret == "" {
		t.Fatalf("create = %d %s", created.status, created.body)
	}
	list := do(t, "GET", e.adminURL+"/admin/keys", admin, nil)
	for name, r := range map[string]response{"create": created, "list": list} {
		for _, secret := range []string{k.Secret, e.key} {
			if h := server.HashSecret(secret); bytes.Contains(r.body, []byte(h)) || bytes.Contains(r.body, []byte(`"hash"`)) {
				t.Errorf("%s response holds a key hash: %s", name, r.body)
			}
		}
	}
}

// TestAuditActorFromCredential: the audit log's actor is the credential
// the change was made with; X-Routelab-Actor is recorded only as a claim
// after it, and a claim that could forge that shape is dropped.
func TestAuditActorFromCredential(t *testing.T) {
	rules, explore := shippedPolicies(t)
	_, _, store := seededPolicyStore(t, rules)
	e := mustStart(t, func(su *setup) {
		d := &su.deps
		d.Policy = store
	})
	tests := []struct {
		claim string
		want  string
	}{
		{"", "admin"},
		{"ceo", "ceo via admin"},
		{"console:eng", "console:eng via admin"},
		{"root via admin", "admin"},
		{"eve\tadmin", "admin"},
		{strings.Repeat("a", 65), "admin"},
	}
	for i, tt := range tests {
		h := map[string]string{"Authorization": "Bearer " + e.admin, "Content-Type": "application/json"}
		if tt.claim != "" {
			h["X-Routelab-Actor"] = tt.claim
		}
		path, body := "/admin/policy", string(explore)
		if i%2 == 1 {
			path, body = "/admin/policy/rollback", "{}"
		}
		if r := do(t, "POST", e.adminURL+path, h, strings.NewReader(body)); r.status != 200 {
			t.Fatalf("POST %s = %d %s", path, r.status, r.body)
		}
	}
	var got []string
	for _, ev := range e.events.Events() {
		if a, ok := ev.Value.(*events.Audit); ok {
			got = append(got, a.Actor)
		}
	}
	if len(got) != len(tests) {
		t.Fatalf("%d audit events, want %d: %q", len(got), len(tests), got)
	}
	for i, tt := range tests {
		if got[i] != tt.want {
			t.Errorf("X-Routelab-Actor %q: audit actor = %q, want %q", tt.claim, got[i], tt.want)
		}
	}
}

// rawConn opens a TCP connection to a test server's URL.
func rawConn(t *testing.T, url string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAnswer reads what the server sends until it closes or a generous
// guard passes (the guard catches a server that waits for the client; it is
// not what the test syncs on).
func readAnswer(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(b) + "<still open after 15 s>"
	}
	return string(b)
}

// TestBodyRefusedBeforeAuth: a request announcing a large body without a
// live key (or, on the admin listener, without the admin token) is
// answered 401/403 at once, without the server waiting for the body; with a
// key, the same announcement is read (and answered 413 past the limit).
func TestBodyRefusedBeforeAuth(t *testing.T) {
	e := mustStart(t, nil) // BodyLimit 4 MiB
	tests := []struct {
		name, url, auth string
		length          int
		want            string
	}{
		{"no key", e.url, "", 4 << 20, "HTTP/1.1 401 "},
		{"bad key", e.url, "Authorization: Bearer rl_nope\r\n", 4 << 20, "HTTP/1.1 401 "},
		{"no key, past the limit", e.url, "", 64 << 20, "HTTP/1.1 401 "},
		{"key, past the limit", e.url, "Authorization: Bearer " + e.key + "\r\n", 64 << 20, "HTTP/1.1 413 "},
		{"admin, no token", e.adminURL, "", 4 << 20, "HTTP/1.1 403 "},
		{"admin, tenant key", e.adminURL, "Authorization: Bearer " + e.key + "\r\n", 4 << 20, "HTTP/1.1 403 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rawConn(t, tt.url)
			path := "/v1/images"
			if tt.url == e.adminURL {
				path = "/admin/keys"
			}
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n{", path, tt.auth, tt.length)
			if got := readAnswer(t, c); !strings.HasPrefix(got, tt.want) {
				t.Errorf("answer = %.60q, want %q before the body is sent", got, tt.want)
			}
		})
	}
}

// TestSlowClientsCutOff: headers that trickle in (slowloris) are cut off
// after ReadHeaderTimeout, and an authorised body that trickles in after
// ReadTimeout.
func TestSlowClientsCutOff(t *testing.T) {
	e := mustStart(t, func(su *setup) {
		c := &su.cfg
		c.ReadHeaderTimeout, c.ReadTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	tests := []struct{ name, sent string }{
		{"headers", "POST /v1/images HTTP/1.1\r\nHost: x\r\nX-Slow: 1"},
		{"body", "POST /v1/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + e.key + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rawConn(t, e.url)
			if _, err := io.WriteString(c, tt.sent); err != nil {
				t.Fatal(err)
			}
			if got := readAnswer(t, c); strings.HasSuffix(got, "<still open after 15 s>") {
				t.Errorf("a client that stopped sending %s is still connected: %.80q", tt.name, got)
			}
		})
	}
}

// TestConnectionCap: past MaxConns open connections, a new one is answered
// 503 and closed.
func TestConnectionCap(t *testing.T) {
	e := mustStart(t, func(su *setup) {
		c := &su.cfg
		c.MaxConns = 2
	})
	for range 2 {
		c := rawConn(t, e.url)
		// A served request proves the connection holds a slot (keep-alive).
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("first connections: %q %v", line, err)
		}
	}
	c := rawConn(t, e.url)
	if got := readAnswer(t, c); !strings.HasPrefix(got, "HTTP/1.1 503") {
		t.Errorf("third connection = %.60q, want 503", got)
	}
}

// TestImageLinks: a link's host is the request's own Host, not an
// X-Forwarded-Host a caller sends, unless the sender is a trusted proxy;
// the image behind a link cannot be sniffed into HTML or script.
func TestImageLinks(t *testing.T) {
	tests := []struct {
		name     string
		trusted  []string
		wantHost string // "" = the server's own address
	}{
		{"untrusted caller", nil, ""},
		{"other proxy trusted", []string{"10.0.0.0/8"}, ""},
		{"trusted proxy", []string{"127.0.0.1"}, "img.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustStart(t, func(su *setup) {
				c, d := &su.cfg, &su.deps
				d.Blobs, c.TrustedProxies = mustBlobs(t), tt.trusted
			})
			h := map[string]string{"Authorization": "Bearer " + e.key, "Content-Type": "application/json", "X-Forwarded-Host": "img.example"}
			got := decodeNative(t, do(t, "POST", e.url+"/v1/images", h, strings.NewReader(`{"prompt":"cat","size":"64x64","response_format":"url"}`)))
			if len(got.Images) != 1 {
				t.Fatalf("%d images", len(got.Images))
			}
			link := got.Images[0].URL
			want := tt.wantHost
			if want == "" {
				want = strings.TrimPrefix(e.url, "http://")
			}
			if !strings.HasPrefix(link, "http://"+want+"/v1/images/") {
				t.Fatalf("link = %s, want host %s", link, want)
			}
			if tt.wantHost != "" {
				return
			}
			r := do(t, "GET", link, nil, nil)
			if r.status != 200 || r.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(r.header.Get("Content-Security-Policy"), "sandbox") {
				t.Errorf("GET link = %d, X-Content-Type-Options %q, CSP %q; want 200, nosniff, a sandbox CSP",
					r.status, r.header.Get("X-Content-Type-Options"), r.header.Get("Content-Security-Policy"))
			}
		})
	}
}

// TestReferenceFetchErrorsAreOne: every way a reference URL fails once it
// is fetched (refused port, 404, redirect to a forbidden address, too big,
// not an image, a name resolving to loopback) gives the caller the same
// status, code and message, so the server cannot be used to map hosts and
// ports.
func TestReferenceFetchErrorsAreOne(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "http://169.254.169.254/latest", http.StatusFound)
		case "/big":
			w.Write(make([]byte, 2<<20))
		case "/text":
			io.WriteString(w, "<html>admin panel</html>")
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/a.png"
	closed.Close()
	allow := mustStart(t, func(su *setup) {
		c := &su.cfg

		c.RefAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	strict := mustStart(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.URL, "http://"))
	tests := []struct {
		name string
		e    *env
		url  string
	}{
		{"closed port", allow, closedURL},
		{"404", allow, ts.URL + "/missing.png"},
		{"redirect to metadata", allow, ts.URL + "/redirect"},
		{"too big", allow, ts.URL + "/big"},
		{"not an image", allow, ts.URL + "/text"},
		{"name resolving to loopback", strict, "http://localhost:" + port + "/a.png"},
	}
	var first string
	for _, tt := range tests {
		r := tt.e.post(t, "/v1/images", `{"prompt":"cat","references":[{"url":"`+tt.url+`"}]}`)
		got := fmt.Sprintf("%d %s", r.status, r.body)
		if r.status != 400 || r.errorCode() != "reference_fetch_failed" {
			t.Errorf("%s = %s, want 400 reference_fetch_failed", tt.name, got)
		}
		if first == "" {
			first = got
		} else if got != first {
			t.Errorf("%s = %s, differs from %s = %s", tt.name, got, tests[0].name, first)
		}
	}
}
