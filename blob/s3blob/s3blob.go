// Package s3blob keeps blobs in an S3-compatible object store (AWS S3,
// MinIO, Ceph RGW, R2, GCS's XML API), so every serve replica and the
// console read the images any of them wrote. Keys are the same content
// addresses as the filesystem store's (blob.Key), laid out as
// PREFIX/ab/cdef... like its directories.
//
// Retention is the bucket's lifecycle rule (an expiration after N days on
// the prefix), set by whoever owns the bucket: serve never rewrites a
// bucket's lifecycle configuration, which may hold rules of other tenants.
package s3blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/routelab/routelab/blob"
)

// Config names a bucket and how to reach it.
type Config struct {
	Endpoint  string // host[:port], no scheme
	Secure    bool   // https
	Region    string // "" = the store's default
	Bucket    string
	Prefix    string // key prefix inside the bucket, no leading or trailing slash
	AccessKey string
	SecretKey string
}

// ParseURL reads a store's location from one URL, the form of serve's
// --blob-s3 flag: http(s)://HOST[:PORT]/BUCKET[/PREFIX][?region=R], e.g.
// http://minio:9000/routelab-blobs or
// https://s3.eu-west-1.amazonaws.com/acme-images/routelab?region=eu-west-1.
// Credentials come from the environment (see Credentials), never the URL,
// which is printed in logs.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("blob store url %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Config{}, fmt.Errorf("blob store url %q: want http:// or https://HOST/BUCKET[/PREFIX]", raw)
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("blob store url %q: credentials go in ROUTELAB_S3_ACCESS_KEY and ROUTELAB_S3_SECRET_KEY, not the url", u.Redacted())
	}
	bucket, prefix, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
	if u.Host == "" || bucket == "" {
		return Config{}, fmt.Errorf("blob store url %q: want http(s)://HOST/BUCKET[/PREFIX]", raw)
	}
	return Config{Endpoint: u.Host, Secure: u.Scheme == "https", Region: u.Query().Get("region"),
		Bucket: bucket, Prefix: strings.Trim(prefix, "/")}, nil
}

// Credentials fills c's keys from ROUTELAB_S3_ACCESS_KEY and
// ROUTELAB_S3_SECRET_KEY, else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
func (c Config) Credentials(getenv func(string) string) Config {
	if getenv == nil {
		getenv = os.Getenv
	}
	c.AccessKey, c.SecretKey = getenv("ROUTELAB_S3_ACCESS_KEY"), getenv("ROUTELAB_S3_SECRET_KEY")
	if c.AccessKey == "" {
		c.AccessKey, c.SecretKey = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	}
	return c
}

// Store is a bucket (and prefix) of blobs. Safe for concurrent use.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
}

// Open connects to the bucket and checks that it exists, so a wrong
// endpoint, bucket or key fails at start rather than on the first image.
func Open(ctx context.Context, cfg Config, transport http.RoundTripper) (*Store, error) {
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: transport,
		// Path-style (host/bucket/key) works on every S3-compatible store;
		// virtual-host style needs DNS for each bucket.
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", cfg.Endpoint, err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("blob store %s bucket %q: %w", cfg.Endpoint, cfg.Bucket, err)
	}
	if !ok {
		return nil, fmt.Errorf("blob store %s: bucket %q does not exist (create it, e.g. mc mb, with a lifecycle rule for retention)", cfg.Endpoint, cfg.Bucket)
	}
	return &Store{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix}, nil
}

func (s *Store) name(key string) string {
	n := key[:2] + "/" + key[2:]
	if s.prefix != "" {
		n = s.prefix + "/" + n
	}
	return n
}

// Put stores data under its content address. S3 replaces an object
// atomically, so a reader sees the whole blob or none, and equal bytes
// rewrite the same name (renewing its age for the lifecycle rule, as the
// filesystem store does).
func (s *Store) Put(ctx context.Context, data []byte) (string, error) {
	key := blob.Key(data)
	_, err := s.c.PutObject(ctx, s.bucket, s.name(key), bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: http.DetectContentType(data)})
	if err != nil {
		return "", fmt.Errorf("put blob %s in %s: %w", key[:12], s.bucket, err)
	}
	return key, nil
}

// Get returns the bytes stored under key, or blob.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if !blob.Valid(key) {
		return nil, blob.ErrNotFound
	}
	o, err := s.c.GetObject(ctx, s.bucket, s.name(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.notFound(key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		return nil, s.notFound(key, err)
	}
	return b, nil
}

func (s *Store) notFound(key string, err error) error {
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return blob.ErrNotFound
	}
	return fmt.Errorf("get blob %s from %s: %w", key[:min(12, len(key))], s.bucket, err)
}

// Check reports whether the bucket answers; readiness uses it.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.c.BucketExists(ctx, s.bucket); err != nil {
		return fmt.Errorf("blob store bucket %q: %w", s.bucket, err)
	}
	return nil
}
