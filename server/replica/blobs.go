package replica

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/blob/s3blob"
)

// BlobOptions place and bound serve's blob store.
type BlobOptions struct {
	Dir string // "" = DATA_DIR/blobs
	// S3 is an S3-compatible bucket holding the blobs instead of Dir
	// (nil: Dir). Replicas on different hosts need it (or one shared
	// volume) for image links to open on each.
	S3        *s3blob.Config
	Retention time.Duration // 0 = keep forever; on S3, the bucket's lifecycle rule instead
	MinFree   uint64        // 0 = no free-space check; filesystem only
}

// blobStore is the store gateway and server share.
type blobStore interface {
	Put(ctx context.Context, data []byte) (string, error)
	Get(ctx context.Context, key string) ([]byte, error)
}

// sweptBlobs is the blob store with its retention sweeper (none on S3).
type sweptBlobs struct {
	blobStore
	stop func() error
}

// openS3Blobs opens the bucket o.S3 names; a wrong endpoint, bucket or
// key fails the start.
func openS3Blobs(ctx context.Context, o BlobOptions, logger *slog.Logger) (*sweptBlobs, error) {
	cfg := *o.S3
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := s3blob.Open(ctx, cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("--blob-s3: %w", err)
	}
	if o.Retention > 0 {
		logger.Info("blobs in an S3 bucket: retention is the bucket's lifecycle rule, not --blob-retention",
			"bucket", cfg.Bucket, "prefix", cfg.Prefix, "blob_retention", o.Retention)
	}
	return &sweptBlobs{blobStore: st, stop: func() error { return nil }}, nil
}

// openBlobs opens the blob store, exports its refused writes and sweeps as
// metrics, and sweeps blobs past retention every retention/24 (at most
// hourly, at least every minute) until stop.
func openBlobs(ctx context.Context, o BlobOptions, dataDir string, reg prometheus.Registerer, logger *slog.Logger) (*sweptBlobs, error) {
	if o.S3 != nil {
		return openS3Blobs(ctx, o, logger)
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(dataDir, "blobs")
	}
	st, err := blob.New(o.Dir, blob.Options{MinFree: o.MinFree})
	if err != nil {
		return nil, err
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "routelab_blob_writes_refused_total", Help: "Blob writes refused because the blob disk is below --blob-min-free."},
			func() float64 { return float64(st.Refused()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "routelab_blob_swept_total", Help: "Blobs deleted past --blob-retention."},
			func() float64 { return float64(st.Swept()) }),
	)
	b := &sweptBlobs{blobStore: st, stop: func() error { return nil }}
	if o.Retention <= 0 {
		return b, nil
	}
	every := min(max(o.Retention/24, time.Minute), time.Hour)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if n, err := st.Sweep(time.Now(), o.Retention); err != nil {
				logger.Warn("blob sweep", "err", err)
			} else if n > 0 {
				logger.Info("blob sweep", "removed", n, "retention", o.Retention)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	b.stop = func() error { close(done); <-stopped; return nil }
	return b, nil
}
