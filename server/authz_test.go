package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/gateway"
)

// The credentials of the authorisation matrix, in the order of want.
var credentials = []string{"none", "tenant key", "other tenant's key", "revoked key", "reviewer", "admin"}

// TestAuthorizationMatrix calls every route of both listeners with every
// credential and checks the status. "reviewer" is a console reviewer's
// session cookie, which the API does not accept. Tenant A (acme) owns the
// request ids and the image link the rows use. Every route the apps
// register must have a row, so a new route cannot skip the matrix.
func TestAuthorizationMatrix(t *testing.T) {
	rules, explore := shippedPolicies(t)
	_, _, store := seededPolicyStore(t, rules)
	log := experiments.NewMemLog()
	reg := experiments.NewRegistry(log, nil, nil)
	log.Bind(reg.Apply)
	e := mustStart(t, func(s *setup) {
		s.deps.Policy, s.deps.Experiments, s.deps.Blobs = store, reg, mustBlobs(t)
		s.gwDeps.Assigner = gateway.NewExperimentAssigner(reg.Assigner, nil)
	})
	ctx := context.Background()
	if _, err := e.keys.Insert(ctx, "globex", "other", "rl_otherkey"); err != nil {
		t.Fatal(err)
	}
	revoked, err := e.keys.Insert(ctx, "acme", "old", "rl_revokedkey")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	doomed, _ := e.keys.Insert(ctx, "acme", "doomed", "rl_doomedkey")
	headers := map[string]map[string]string{
		"none":               {},
		"tenant key":         {"Authorization": "Bearer " + e.key},
		"other tenant's key": {"Authorization": "Bearer rl_otherkey"},
		"revoked key":        {"Authorization": "Bearer rl_revokedkey"},
		"reviewer":           {"Cookie": "routelab_session=0b9d7e0e-reviewer; routelab_csrf=tok", "X-Csrf-Token": "tok"},
		"admin":              {"Authorization": "Bearer " + e.admin},
	}
	// What tenant A owns: a request (for feedback) and a signed image link.
	owned := decodeNative(t, e.post(t, "/v1/images", `{"prompt":"cat","size":"64x64","response_format":"url"}`))
	link := strings.TrimPrefix(owned.Images[0].URL, e.url)
	linkPath, _, _ := strings.Cut(link, "?")
	exp := e.admin_(t, "POST", "/admin/experiments", pinSpec)
	var spec experiments.Spec
	if err := json.Unmarshal(exp.body, &spec); err != nil || exp.status != 201 {
		t.Fatalf("seed experiment = %d %s", exp.status, exp.body)
	}
	png := pngBytes(t, 16, 16)
	edit := func() (string, []byte) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		_ = w.WriteField("prompt", "make it blue")
		fw, _ := w.CreateFormFile("image", "a.png")
		fw.Write(png)
		w.Close()
		return w.FormDataContentType(), b.Bytes()
	}
	const jsonType = "application/json"
	tests := []struct {
		admin         bool   // on the admin listener
		method, route string // route as registered
		path, body    string // path called ("" = route)
		want          [6]int // by credentials
	}{
		{false, "GET", "/healthz", "", "", [6]int{200, 200, 200, 200, 200, 200}},
		{false, "GET", "/readyz", "", "", [6]int{200, 200, 200, 200, 200, 200}},
		// A signed link is its own credential: valid for everyone, a
		// tampered one for no one.
		{false, "GET", "/v1/images/:id", link, "", [6]int{200, 200, 200, 200, 200, 200}},
		{false, "GET", "/v1/images/:id", linkPath + "?exp=1&sig=00", "", [6]int{403, 403, 403, 403, 403, 403}},
		{false, "POST", "/v1/images", "", `{"prompt":"cat","size":"64x64"}`, [6]int{401, 200, 200, 401, 401, 401}},
		{false, "POST", "/v1/images/generations", "", `{"prompt":"cat","size":"64x64"}`, [6]int{401, 200, 200, 401, 401, 401}},
		{false, "POST", "/v1/images/edits", "", "multipart", [6]int{401, 200, 200, 401, 401, 401}},
		// Feedback counts only for the caller's own requests: tenant A's
		// request is unknown to another tenant.
		{false, "POST", "/v1/feedback", "", `{"request_id":"` + owned.ID + `","signal":"thumbs_down"}`, [6]int{401, 202, 404, 401, 401, 401}},
		{false, "GET", "/v1/models", "", "", [6]int{401, 200, 200, 401, 401, 401}},
		{false, "GET", "/v1/usage", "", "", [6]int{401, 200, 200, 401, 401, 401}},

		{true, "GET", "/healthz", "", "", [6]int{200, 200, 200, 200, 200, 200}},
		{true, "GET", "/readyz", "", "", [6]int{200, 200, 200, 200, 200, 200}},
		{true, "GET", "/metrics", "", "", [6]int{200, 200, 200, 200, 200, 200}},
		{true, "GET", "/admin/keys", "", "", [6]int{403, 403, 403, 403, 403, 200}},
		{true, "POST", "/admin/keys", "", `{"tenant":"initech"}`, [6]int{403, 403, 403, 403, 403, 201}},
		{true, "DELETE", "/admin/keys/:id", "/admin/keys/" + doomed.ID, "", [6]int{403, 403, 403, 403, 403, 200}},
		{true, "GET", "/admin/policy", "", "", [6]int{403, 403, 403, 403, 403, 200}},
		{true, "POST", "/admin/policy", "", string(explore), [6]int{403, 403, 403, 403, 403, 200}},
		{true, "POST", "/admin/policy/stage", "", string(rules), [6]int{403, 403, 403, 403, 403, 200}},
		{true, "POST", "/admin/policy/rollback", "", "{}", [6]int{403, 403, 403, 403, 403, 200}},
		// An edit chain's image, for another replica: a tenant's bytes,
		// admin only.
		{true, "GET", "/admin/chains/:id/image", "/admin/chains/" + owned.ID + "/image", "", [6]int{403, 403, 403, 403, 403, 200}},
		{true, "GET", "/admin/experiments", "", "", [6]int{403, 403, 403, 403, 403, 200}},
		{true, "POST", "/admin/experiments", "", strings.NewReplacer("pin strong", "matrix", `"layer":"models"`, `"layer":"matrix"`).Replace(pinSpec), [6]int{403, 403, 403, 403, 403, 201}},
		{true, "GET", "/admin/experiments/:id", "/admin/experiments/" + spec.ID, "", [6]int{403, 403, 403, 403, 403, 200}},
		{true, "PUT", "/admin/experiments/:id", "/admin/experiments/" + spec.ID, pinSpec, [6]int{403, 403, 403, 403, 403, 200}},
		{true, "POST", "/admin/experiments/:id/:action", "/admin/experiments/" + spec.ID + "/start", "", [6]int{403, 403, 403, 403, 403, 200}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		prefix := "api"
		base := e.url
		if tt.admin {
			prefix, base = "admin", e.adminURL
		}
		covered[prefix+" "+tt.method+" "+tt.route] = true
		path := tt.path
		if path == "" {
			path = tt.route
		}
		for i, cred := range credentials {
			h := map[string]string{}
			for k, v := range headers[cred] {
				h[k] = v
			}
			body := []byte(tt.body)
			switch {
			case tt.body == "multipart":
				h["Content-Type"], body = edit()
			case tt.body != "":
				h["Content-Type"] = jsonType
			}
			r := do(t, tt.method, base+path, h, bytes.NewReader(body))
			if r.status != tt.want[i] {
				t.Errorf("%s %s %s with %s = %d, want %d: %.200s", prefix, tt.method, path, cred, r.status, tt.want[i], r.body)
			}
		}
	}
	for _, lr := range []struct {
		prefix string
		routes []string
	}{{"api", routesOf(e.srv.App)}, {"admin", routesOf(e.srv.Admin)}} {
		for _, r := range lr.routes {
			if !covered[lr.prefix+" "+r] {
				t.Errorf("%s route %s has no row in the authorisation matrix", lr.prefix, r)
			}
		}
	}
}

// routesOf lists an app's routes as "METHOD path", without the HEAD twins
// of GETs and middleware.
func routesOf(app *fiber.App) []string {
	var out []string
	for _, r := range app.GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" {
			continue
		}
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}
