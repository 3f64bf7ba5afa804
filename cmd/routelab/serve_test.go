package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeEndToEnd runs routelab dev and sends a product request with the
// seeded key: it is served, and its decision and QA rows reach ClickHouse
// through the producer, the broker and ingest. Keys made through the admin
// API work at once and stop working when revoked.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	info, _ := startDevForTest(t, t.TempDir())
	if info.API == "" || info.Admin == "" || info.APIKey == "" || info.AdminToken == "" {
		t.Fatalf("dev.json = %+v, want api, admin, api_key and admin_token", info)
	}
	postTo := func(base, key, path, body string) (*http.Response, []byte) {
		t.Helper()
		return callAPI(t, http.MethodPost, base+path, key, body)
	}
	post := func(key, path, body string) (*http.Response, []byte) {
		t.Helper()
		return postTo(info.API, key, path, body)
	}
	resp, body := post(info.APIKey, "/v1/images", `{"prompt":"a poster that says \"GRAND OPENING\"","quality":"premium"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v1/images = %d: %.300s", resp.StatusCode, body)
	}
	id := resp.Header.Get("x-routelab-request-id")
	var got struct {
		Model  string `json:"model"`
		Images []struct {
			B64 []byte `json:"b64_json"`
		} `json:"images"`
	}
	if err := json.Unmarshal(body, &got); err != nil || len(got.Images) != 1 || !bytes.HasPrefix(got.Images[0].B64, []byte("\x89PNG")) {
		t.Fatalf("response: %v, %d images", err, len(got.Images))
	}
	// dev makes the shipped trained policy live, not the exploring one
	if resp.Header.Get("x-routelab-model") != got.Model || !strings.HasPrefix(resp.Header.Get("x-routelab-policy"), "default-") {
		t.Errorf("headers model %q policy %q, body model %q; want the shipped default policy", resp.Header.Get("x-routelab-model"), resp.Header.Get("x-routelab-policy"), got.Model)
	}
	deadline := time.Now().Add(devWait)
	for chQuery(t, info.ClickHouseHTTP, "SELECT count() FROM routelab.decisions FINAL WHERE request_id = '"+id+"' AND model = '"+got.Model+"'") != "1" ||
		chQuery(t, info.ClickHouseHTTP, "SELECT count() > 0 FROM routelab.qa_results FINAL WHERE request_id = '"+id+"'") != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("no decision and QA rows for %s in ClickHouse after %v", id, devWait)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The admin API is on its own listener: the public port does not know
	// it even with the admin token. A key created through it serves, then
	// 401 once revoked.
	if resp, _ := post(info.AdminToken, "/admin/keys", `{"tenant":"globex"}`); resp.StatusCode != 404 && resp.StatusCode != 401 {
		t.Errorf("POST /admin/keys on the API port = %d, want 404 (or 401: a body without an API key)", resp.StatusCode)
	}
	resp, body = postTo(info.Admin, info.AdminToken, "/admin/keys", `{"tenant":"globex"}`)
	var k struct{ ID, Secret string }
	if resp.StatusCode != 201 || json.Unmarshal(body, &k) != nil || k.Secret == "" {
		t.Fatalf("create key = %d %s", resp.StatusCode, body)
	}
	if resp, _ := post(k.Secret, "/v1/images", `{"prompt":"x"}`); resp.StatusCode != 200 {
		t.Errorf("new key = %d, want 200", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodDelete, info.Admin+"/admin/keys/"+k.ID, nil)
	req.Header.Set("Authorization", "Bearer "+info.AdminToken)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", err, r)
	}
	if resp, _ := post(k.Secret, "/v1/images", `{"prompt":"x"}`); resp.StatusCode != 401 {
		t.Errorf("revoked key = %d, want 401", resp.StatusCode)
	}
}

// callAPI sends a JSON body (or none) with a bearer key and returns the
// response and its body.
func callAPI(t *testing.T, method, url, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}
