package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/routelab/routelab/devstack"
)

// TestResolveAdmin: flags (or env, already in them) win, dev.json fills what
// is missing (its admin listener, or the api of a dev.json written before
// there was one), and a bare host:port gets a scheme.
func TestResolveAdmin(t *testing.T) {
	old := t.TempDir()
	if err := devstack.WriteInfo(filepath.Join(old, "dev.json"), devstack.Info{API: "http://127.0.0.1:18080", AdminToken: "dev-token"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := devstack.WriteInfo(filepath.Join(dir, "dev.json"), devstack.Info{API: "http://127.0.0.1:18080", Admin: "http://127.0.0.1:18081", AdminToken: "dev-token"}); err != nil {
		t.Fatal(err)
	}
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, "dev.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, token, dir string
		wantURL, wantToken    string
		wantErr               bool
	}{
		{"all from dev.json", "", "", dir, "http://127.0.0.1:18081", "dev-token", false},
		{"dev.json without admin", "", "", old, "http://127.0.0.1:18080", "dev-token", false},
		{"flags win", "https://admin.example", "t", dir, "https://admin.example", "t", false},
		{"token from dev.json", "10.0.0.1:8080", "", dir, "http://10.0.0.1:8080", "dev-token", false},
		{"no dev.json", "", "", t.TempDir(), "", "", false},
		{"corrupt dev.json", "", "", corrupt, "", "", true},
		{"flags need no dev.json", "https://a", "t", corrupt, "https://a", "t", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, tok, err := resolveAdmin(tt.url, tt.token, tt.dir)
			if (err != nil) != tt.wantErr {
				t.Fatalf("resolveAdmin(%q, %q) error = %v, want error %v", tt.url, tt.token, err, tt.wantErr)
			}
			if u != tt.wantURL || tok != tt.wantToken {
				t.Errorf("resolveAdmin(%q, %q) = %q, %q; want %q, %q", tt.url, tt.token, u, tok, tt.wantURL, tt.wantToken)
			}
		})
	}
}
