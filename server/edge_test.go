package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/server"
)

// TestAdminAPIOnlyOnAdminListener: the public listener does not know
// /admin/* even with the admin token; the admin listener serves it.
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
		if r := do(t, tt.method, e.url+tt.path, admin, strings.NewReader(tt.body)); r.status != 404 {
			t.Errorf("%s %s on the public listener = %d, want 404", tt.method, tt.path, r.status)
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
	e := mustStart(t, func(_ *server.Config, d *server.Deps) {
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
	e := mustStart(t, func(_ *server.Config, d *server.Deps) { d.Policy = store })
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
