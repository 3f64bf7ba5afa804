package server_test

import (
	"encoding/json"
	"testing"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/server"
)

func mustBlobs(t *testing.T) *blob.Store {
	t.Helper()
	s, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A full blob disk fails a url response with a 503 the client can retry
// (storage_unavailable, Retry-After), not an internal error.
func TestURLResponseOnFullBlobDisk(t *testing.T) {
	full, err := blob.New(t.TempDir(), blob.Options{MinFree: 1, FreeSpace: func(string) (uint64, error) { return 0, nil }})
	if err != nil {
		t.Fatal(err)
	}
	e := mustStart(t, func(s *setup) { s.deps.Blobs = full })
	r := e.post(t, "/v1/images", `{"prompt":"cat","size":"64x64","response_format":"url"}`)
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &body)
	if r.status != 503 || body.Error.Code != server.CodeStorageUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("url response on a full blob disk = %d %s (Retry-After %q), want 503 %s with Retry-After",
			r.status, r.body, r.header.Get("Retry-After"), server.CodeStorageUnavailable)
	}
	// Inline answers do not need the disk.
	if r := e.post(t, "/v1/images", `{"prompt":"cat","size":"64x64"}`); r.status != 200 {
		t.Errorf("b64 response on a full blob disk = %d %s, want 200", r.status, r.body)
	}
}
