package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/server"
	"github.com/routelab/routelab/server/servertest"
)

// env is a server on a real 127.0.0.1 listener with test doubles.
// eventWait bounds a test's wait for an event (an emitted event, a metric,
// a shutdown) only so that a hang fails with a message: the wait ends on
// the event. A 2-core machine running the whole suite under -race takes
// seconds for what takes milliseconds alone, so this is no timing budget.
const eventWait = time.Minute

type env struct {
	url      string
	adminURL string // the admin listener (Server.ServeAdmin)
	key      string
	admin    string
	srv      *server.Server
	keys     *server.MemKeys
	events   *gatewaytest.Producer
	router   *gatewaytest.Router
	fast     *gatewaytest.Provider
	strong   *gatewaytest.Provider
	qa       *gatewaytest.Inspector
}

var (
	red  = color.NRGBA{200, 30, 30, 255}
	blue = color.NRGBA{30, 30, 200, 255}
)

// setup is what mustStart builds: the server's config and deps and the
// gateway's.
type setup struct {
	cfg    server.Config
	deps   server.Deps
	gw     gateway.Config
	gwDeps gateway.Deps
}

// mustStart starts a server; edit adjusts the setup before New.
func mustStart(t *testing.T, edit func(*setup)) *env {
	t.Helper()
	e := &env{
		admin:  "admin-secret",
		keys:   server.NewMemKeys(),
		events: gatewaytest.NewProducer(1024),
		router: &gatewaytest.Router{Model: "fast", Chain: []string{"strong"}, Version: "p1"},
		fast:   &gatewaytest.Provider{Model: "fast", Color: red, CostUSD: 0.01},
		strong: &gatewaytest.Provider{Model: "strong", Color: blue, CostUSD: 0.04},
		qa:     &gatewaytest.Inspector{},
	}
	_, err := e.keys.Insert(context.Background(), "acme", "test", "rl_testkey")
	if err != nil {
		t.Fatal(err)
	}
	e.key = "rl_testkey"
	reg := prometheus.NewRegistry()
	s := setup{
		cfg: server.Config{AdminToken: e.admin, BodyLimit: 4 << 20, MaxRefBytes: 1 << 20, URLSecret: []byte("s3cret")},
		deps: server.Deps{
			Catalog:  []server.Model{{Name: "fast", Provider: "fakeco"}, {Name: "strong", Provider: "bigco"}},
			Events:   e.events,
			Keys:     e.keys,
			Registry: reg,
		},
		gw: gateway.Config{SampleRate: -1},
		gwDeps: gateway.Deps{
			Policy:     e.router,
			Providers:  map[string]providers.Provider{"fast": e.fast, "strong": e.strong},
			ProviderOf: map[string]string{"fast": "fakeco", "strong": "bigco"},
			QA:         e.qa,
			Events:     e.events,
			Registry:   reg,
		},
	}
	if edit != nil {
		edit(&s)
	}
	if s.gwDeps.Blobs == nil && s.deps.Blobs != nil {
		s.gwDeps.Blobs = s.deps.Blobs
	}
	s.deps.Gateway = gateway.New(s.gw, s.gwDeps)
	cfg, deps := s.cfg, s.deps
	e.srv = server.New(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, deps)
	e.url, e.adminURL = servertest.Start(t, e.srv, eventWait)
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errorCode() string {
	var b struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &b)
	return b.Error.Code
}

func do(t *testing.T, method, url string, header map[string]string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) post(t *testing.T, path, body string) response {
	t.Helper()
	return do(t, "POST", e.url+path, map[string]string{"Authorization": "Bearer " + e.key, "Content-Type": "application/json"}, strings.NewReader(body))
}

type nativeResponse struct {
	ID            string `json:"id"`
	Model         string `json:"model"`
	PolicyVersion string `json:"policy_version"`
	Escalated     bool   `json:"escalated"`
	Fallback      bool   `json:"fallback"`
	Reset         bool   `json:"reset"`
	QAPass        bool   `json:"qa_pass"`
	Attempts      []events.Attempt
	Images        []struct {
		B64JSON string `json:"b64_json"`
		URL     string `json:"url"`
		Width   int    `json:"width"`
		Height  int    `json:"height"`
	} `json:"images"`
}

func decodeNative(t *testing.T, r response) nativeResponse {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status = %d, want 200: %s", r.status, r.body)
	}
	var n nativeResponse
	if err := json.Unmarshal(r.body, &n); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return n
}

func mustPNG(t *testing.T, b64 string) image.Image {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("b64_json: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	return img
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGenerate(t *testing.T) {
	e := mustStart(t, nil)
	r := e.post(t, "/v1/images", `{"prompt":"a red fox","size":"256x128"}`)
	got := decodeNative(t, r)
	if got.Model != "fast" || got.PolicyVersion != "p1" || !got.QAPass || got.Escalated {
		t.Errorf("response = %+v, want fast, p1, qa pass, not escalated", got)
	}
	if len(got.Images) != 1 {
		t.Fatalf("images = %d, want 1", len(got.Images))
	}
	if b := mustPNG(t, got.Images[0].B64JSON).Bounds(); b.Dx() != 256 || b.Dy() != 128 {
		t.Errorf("image is %v, want 256x128", b)
	}
	for h, want := range map[string]string{
		"x-routelab-request-id": got.ID, "x-routelab-model": "fast", "x-routelab-policy": "p1",
		"x-routelab-experiment": "", "x-routelab-escalated": "false",
	} {
		if _, ok := r.header[http.CanonicalHeaderKey(h)]; !ok {
			t.Errorf("header %s missing", h)
		}
		if v := r.header.Get(h); v != want {
			t.Errorf("header %s = %q, want %q", h, v, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	ev, ok := e.events.Next(ctx, events.TopicDecisions)
	if !ok {
		t.Fatal("no decision event")
	}
	d := ev.Value.(*events.Decision)
	if ev.Key != got.ID || d.RequestID != got.ID || d.Model != "fast" || d.Status != "ok" || d.Tenant != "acme" || len(d.Attempts) != 1 {
		t.Errorf("decision = %+v (key %s), want request %s served by fast", d, ev.Key, got.ID)
	}
}

func TestAuth(t *testing.T) {
	e := mustStart(t, nil)
	body := `{"prompt":"x"}`
	jsonCT := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no key", jsonCT, 401},
		{"bad key", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer nope"}, 401},
		{"x-api-key", map[string]string{"Content-Type": "application/json", "x-api-key": e.key}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", e.url+"/v1/images", tt.header, strings.NewReader(body))
			if r.status != tt.want {
				t.Errorf("status = %d, want %d: %s", r.status, tt.want, r.body)
			}
			if tt.want == 401 && r.errorCode() != "unauthorized" {
				t.Errorf("code = %q, want unauthorized", r.errorCode())
			}
		})
	}

	// Admin: create a key, use it, revoke it.
	admin := map[string]string{"Authorization": "Bearer " + e.admin, "Content-Type": "application/json"}
	r := do(t, "POST", e.adminURL+"/admin/keys", admin, strings.NewReader(`{"tenant":"globex","name":"ci"}`))
	if r.status != 201 {
		t.Fatalf("create key = %d: %s", r.status, r.body)
	}
	var created struct{ ID, Secret, Tenant, Hash string }
	_ = json.Unmarshal(r.body, &created)
	if created.Secret == "" || created.Hash == created.Secret || created.Tenant != "globex" {
		t.Fatalf("created = %+v", created)
	}
	withKey := map[string]string{"Authorization": "Bearer " + created.Secret, "Content-Type": "application/json"}
	if r := do(t, "POST", e.url+"/v1/images", withKey, strings.NewReader(body)); r.status != 200 {
		t.Fatalf("new key = %d, want 200: %s", r.status, r.body)
	}
	list := do(t, "GET", e.adminURL+"/admin/keys", admin, nil)
	if list.status != 200 || bytes.Contains(list.body, []byte(created.Secret)) || !bytes.Contains(list.body, []byte(created.ID)) {
		t.Errorf("list = %d %s, want the key id and no secret", list.status, list.body)
	}
	if r := do(t, "DELETE", e.adminURL+"/admin/keys/"+created.ID, admin, nil); r.status != 200 {
		t.Fatalf("revoke = %d: %s", r.status, r.body)
	}
	if r := do(t, "POST", e.url+"/v1/images", withKey, strings.NewReader(body)); r.status != 401 {
		t.Errorf("revoked key = %d, want 401", r.status)
	}
	if r := do(t, "DELETE", e.adminURL+"/admin/keys/key_nope", admin, nil); r.status != 404 {
		t.Errorf("revoke unknown = %d, want 404", r.status)
	}

	for name, h := range map[string]map[string]string{
		"no token":   nil,
		"tenant key": {"Authorization": "Bearer " + e.key},
		"bad token":  {"Authorization": "Bearer wrong"},
	} {
		if r := do(t, "GET", e.adminURL+"/admin/keys", h, nil); r.status != 403 || r.errorCode() != "forbidden" {
			t.Errorf("admin with %s = %d %s, want 403 forbidden", name, r.status, r.errorCode())
		}
	}
}

// TestEventsBacklogged: while the event producer is backlogged, image
// requests get 503 events_backlogged with Retry-After and the admin /readyz
// says why the replica is not ready.
func TestEventsBacklogged(t *testing.T) {
	e := mustStart(t, nil)
	e.events.Full.Store(true)
	r := e.post(t, "/v1/images", `{"prompt":"x"}`)
	if r.status != 503 || r.errorCode() != gateway.CodeEventsBacklogged || r.header.Get("Retry-After") == "" {
		t.Errorf("request while backlogged = %d %s (Retry-After %q), want 503 %s with Retry-After", r.status, r.body, r.header.Get("Retry-After"), gateway.CodeEventsBacklogged)
	}
	if r := do(t, "GET", e.adminURL+"/readyz", nil, nil); r.status != 503 || !bytes.Contains(r.body, []byte("event backlog")) {
		t.Errorf("admin /readyz while backlogged = %d %s, want 503 naming the event backlog", r.status, r.body)
	}
	if n := len(e.events.Events()); n != 0 {
		t.Errorf("%d events emitted for a refused request, want none", n)
	}
	e.events.Full.Store(false)
	decodeNative(t, e.post(t, "/v1/images", `{"prompt":"x"}`))
	if r := do(t, "GET", e.adminURL+"/readyz", nil, nil); r.status != 200 {
		t.Errorf("admin /readyz once the backlog cleared = %d %s, want 200", r.status, r.body)
	}
}

func TestHealth(t *testing.T) {
	notReady := true
	e := mustStart(t, func(s *setup) {
		s.deps.Ready = func() error {
			if notReady {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
	})
	if r := do(t, "GET", e.url+"/healthz", nil, nil); r.status != 200 {
		t.Errorf("healthz = %d", r.status)
	}
	if r := do(t, "GET", e.url+"/readyz", nil, nil); r.status != 503 {
		t.Errorf("readyz before ready = %d, want 503", r.status)
	}
	notReady = false
	if r := do(t, "GET", e.url+"/readyz", nil, nil); r.status != 200 {
		t.Errorf("readyz = %d, want 200", r.status)
	}
	e.post(t, "/v1/images", `{"prompt":"x"}`)
	m := do(t, "GET", e.adminURL+"/metrics", nil, nil)
	if m.status != 200 || !bytes.Contains(m.body, []byte(`routelab_serve_requests_total{model="fast",route="images",status="200"} 1`)) {
		t.Errorf("metrics = %d, want a request counter:\n%s", m.status, m.body)
	}
	e.srv.Drain()
	if r := do(t, "GET", e.url+"/readyz", nil, nil); r.status != 503 {
		t.Errorf("readyz while draining = %d, want 503", r.status)
	}
	if r := e.post(t, "/v1/images", `{"prompt":"x"}`); r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("request while draining = %d (Retry-After %q), want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
}
