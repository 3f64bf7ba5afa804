package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestPolicyPushNamesTheActor: the CLI's admin calls say who ran them, so
// the audit log names a person rather than "admin".
func TestPolicyPushNamesTheActor(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("x-routelab-actor"):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"version":"p-1","live":true}`)
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(file, []byte(`{"version":"p-1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "USER" {
			return "ana"
		}
		return ""
	}
	err := run(context.Background(), []string{"policy", "push", "--admin-url", srv.URL, "--admin-token", "t", file}, getenv, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if a := <-got; a != "cli:ana" {
		t.Errorf("x-routelab-actor = %q, want cli:ana", a)
	}
}
