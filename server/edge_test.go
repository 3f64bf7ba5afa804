package server_test

import (
	"strings"
	"testing"
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
