package main

import (
	"path/filepath"
	"testing"
)

func TestDevInfoClickHouseDSN(t *testing.T) {
	tests := []struct {
		give devInfo
		want string
	}{
		{devInfo{}, ""},
		{devInfo{Database: "routelab"}, ""},
		{devInfo{ClickHouse: "127.0.0.1:19000"}, "clickhouse://127.0.0.1:19000"},
		{devInfo{ClickHouse: "127.0.0.1:19000", Database: "routelab"}, "clickhouse://127.0.0.1:19000/routelab"},
		{devInfo{ClickHouse: "clickhouse://127.0.0.1:19000", Database: "routelab"}, "clickhouse://127.0.0.1:19000/routelab"},
		{devInfo{ClickHouse: "clickhouse://h:9000/other", Database: "routelab"}, "clickhouse://h:9000/other"},
	}
	for _, tt := range tests {
		if got := tt.give.clickHouseDSN(); got != tt.want {
			t.Errorf("%+v.clickHouseDSN() = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// TestResolveAdmin: flags (or env, already in them) win, dev.json fills what
// is missing, and a bare host:port gets a scheme.
func TestResolveAdmin(t *testing.T) {
	dir := t.TempDir()
	if err := writeDevInfo(filepath.Join(dir, "dev.json"), devInfo{API: "http://127.0.0.1:18080", AdminToken: "dev-token"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, token, dir string
		wantURL, wantToken    string
	}{
		{"all from dev.json", "", "", dir, "http://127.0.0.1:18080", "dev-token"},
		{"flags win", "https://admin.example", "t", dir, "https://admin.example", "t"},
		{"token from dev.json", "10.0.0.1:8080", "", dir, "http://10.0.0.1:8080", "dev-token"},
		{"no dev.json", "", "", t.TempDir(), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, tok := resolveAdmin(tt.url, tt.token, tt.dir)
			if u != tt.wantURL || tok != tt.wantToken {
				t.Errorf("resolveAdmin(%q, %q) = %q, %q; want %q, %q", tt.url, tt.token, u, tok, tt.wantURL, tt.wantToken)
			}
		})
	}
}
