package replica_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/routelab/routelab/blob/s3blob"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/server/replica"
)

// TestImageLinksOpenOnEveryReplica: two replicas with their own data dirs
// share only an S3 bucket (gofakes3 on 127.0.0.1) and the link secret. A
// link made by one opens on the other; after a rotation (the second
// replica has a new secret and the old one as previous) the old link
// still opens, and a link signed with neither does not.
func TestImageLinksOpenOnEveryReplica(t *testing.T) {
	be := s3mem.New()
	if err := be.CreateBucket("blobs"); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(be).Server())
	t.Cleanup(s3.Close)
	bucket, err := s3blob.ParseURL(s3.URL + "/blobs/links")
	if err != nil {
		t.Fatal(err)
	}
	bucket.AccessKey, bucket.SecretKey = "test", "test"

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Partitions: 1})
	if err != nil {
		t.Fatalf("broker.Start: %v", err)
	}
	t.Cleanup(b.Close)
	oldSecret, newSecret := strings.Repeat("o", 32), strings.Repeat("n", 32)
	start := func(secret, previous string) *replica.Replica {
		r, err := replica.Start(ctx, replica.Options{
			Addr: "127.0.0.1:0", Brokers: []string{b.Addr()}, DataDir: t.TempDir(), Policy: "rules",
			SeedKey: "rl_links_test_key_0123456789abcdef", SeedTenant: "links",
			URLSecret: secret, URLSecretPrevious: previous,
			Blobs:  replica.BlobOptions{S3: &bucket},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatalf("replica.Start: %v", err)
		}
		t.Cleanup(func() { _ = r.Stop(context.Background(), 10*time.Second) })
		return r
	}
	r1 := start(oldSecret, "")
	r2 := start(oldSecret, "")

	body, _ := json.Marshal(map[string]any{"prompt": "a blue bird", "response_format": "url"})
	req, _ := http.NewRequest(http.MethodPost, r1.URL()+"/v1/images", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer rl_links_test_key_0123456789abcdef")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Images []struct {
			URL string `json:"url"`
		} `json:"images"`
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != 200 || len(out.Images) == 0 || out.Images[0].URL == "" {
		t.Fatalf("POST /v1/images on replica 1 = %d %s", resp.StatusCode, raw)
	}
	path := strings.TrimPrefix(out.Images[0].URL, r1.URL())

	get := func(base, path string) (int, []byte) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, img := get(r2.URL(), path); code != 200 || !bytes.HasPrefix(img, []byte("\x89PNG")) {
		t.Fatalf("link made on replica 1, opened on replica 2 = %d (%d bytes), want 200 and the PNG", code, len(img))
	}

	rotated := start(newSecret, oldSecret)
	if code, _ := get(rotated.URL(), path); code != 200 {
		t.Errorf("link signed with the previous secret, on a rotated replica = %d, want 200", code)
	}
	stranger := start(strings.Repeat("x", 32), newSecret)
	if code, _ := get(stranger.URL(), path); code != http.StatusForbidden {
		t.Errorf("link signed with a secret the replica no longer knows = %d, want 403", code)
	}
}
