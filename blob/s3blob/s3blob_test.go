package s3blob_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/blob/s3blob"
)

// fakeS3 serves the S3 REST API on 127.0.0.1 (gofakes3: MinIO and AWS
// cannot run here) with the given buckets, and returns its URL.
func fakeS3(t *testing.T, buckets ...string) (string, *s3mem.Backend) {
	t.Helper()
	be := s3mem.New()
	for _, b := range buckets {
		if err := be.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(gofakes3.New(be).Server())
	t.Cleanup(srv.Close)
	return srv.URL, be
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want s3blob.Config
		err  string
	}{
		{in: "http://minio:9000/routelab-blobs", want: s3blob.Config{Endpoint: "minio:9000", Bucket: "routelab-blobs"}},
		{in: "https://s3.eu-west-1.amazonaws.com/acme/images/routelab/?region=eu-west-1",
			want: s3blob.Config{Endpoint: "s3.eu-west-1.amazonaws.com", Secure: true, Region: "eu-west-1", Bucket: "acme", Prefix: "images/routelab"}},
		{in: "s3://bucket", err: "want http:// or https://"},
		{in: "http://minio:9000/", err: "HOST/BUCKET"},
		{in: "http://key:secret@minio:9000/b", err: "not the url"},
	} {
		got, err := s3blob.ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) error = %v, want one saying %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseURL(%q) error prints the secret: %v", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestCredentialsFromTheEnvironment(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "aws-id", "AWS_SECRET_ACCESS_KEY": "aws-secret"}
	c := s3blob.Config{}.Credentials(func(k string) string { return env[k] })
	if c.AccessKey != "aws-id" || c.SecretKey != "aws-secret" {
		t.Errorf("AWS_* only: %q/%q", c.AccessKey, c.SecretKey)
	}
	env["ROUTELAB_S3_ACCESS_KEY"], env["ROUTELAB_S3_SECRET_KEY"] = "rl-id", "rl-secret"
	c = s3blob.Config{}.Credentials(func(k string) string { return env[k] })
	if c.AccessKey != "rl-id" || c.SecretKey != "rl-secret" {
		t.Errorf("ROUTELAB_S3_* beside AWS_*: %q/%q, want the ROUTELAB ones", c.AccessKey, c.SecretKey)
	}
}

func open(t *testing.T, raw string) *s3blob.Store {
	t.Helper()
	cfg, err := s3blob.ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessKey, cfg.SecretKey = "test", "test"
	st, err := s3blob.Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Two stores on the same bucket are two replicas: what one puts, the
// other gets, under the content address and the prefix's layout.
func TestPutOnOneGetOnAnother(t *testing.T) {
	u, be := fakeS3(t, "blobs")
	a, b := open(t, u+"/blobs/serve"), open(t, u+"/blobs/serve")
	data := []byte("\x89PNG\r\n\x1a\nan image")
	key, err := a.Put(t.Context(), data)
	if err != nil {
		t.Fatal(err)
	}
	if key != blob.Key(data) {
		t.Errorf("key = %s, want the content address %s", key, blob.Key(data))
	}
	got, err := b.Get(t.Context(), key)
	if err != nil || string(got) != string(data) {
		t.Fatalf("Get on the other store = %q, %v", got, err)
	}
	obj, err := be.HeadObject("blobs", "serve/"+key[:2]+"/"+key[2:])
	if err != nil {
		t.Fatalf("object not at PREFIX/ab/cdef...: %v", err)
	}
	if ct := obj.Metadata["Content-Type"]; ct != "image/png" {
		t.Errorf("content type = %q, want image/png", ct)
	}
	if again, err := b.Put(t.Context(), data); err != nil || again != key {
		t.Errorf("second Put of the same bytes = %s, %v", again, err)
	}
}

func TestGetMissingIsNotFound(t *testing.T) {
	u, _ := fakeS3(t, "blobs")
	st := open(t, u+"/blobs")
	for _, key := range []string{blob.Key([]byte("never stored")), "../../etc/passwd", ""} {
		if _, err := st.Get(t.Context(), key); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want blob.ErrNotFound", key, err)
		}
	}
}

func TestOpenFailsOnAMissingBucketOrStore(t *testing.T) {
	u, _ := fakeS3(t, "blobs")
	cfg, _ := s3blob.ParseURL(u + "/no-such-bucket")
	if _, err := s3blob.Open(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open of a missing bucket = %v, want an error saying it does not exist", err)
	}
	srv := httptest.NewServer(nil)
	dead := srv.URL
	srv.Close()
	cfg, _ = s3blob.ParseURL(dead + "/blobs")
	if _, err := s3blob.Open(t.Context(), cfg, nil); err == nil {
		t.Error("Open of an endpoint nobody listens on succeeded")
	}
}

func TestPutHonoursTheContext(t *testing.T) {
	u, _ := fakeS3(t, "blobs")
	st := open(t, u+"/blobs")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.Put(ctx, []byte("late")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context = %v, want context.Canceled", err)
	}
}
