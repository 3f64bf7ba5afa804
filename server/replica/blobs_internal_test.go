package replica

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routelab/routelab/blob"
)

// TestServeBlobsSweptAndBounded: serve's blob store sweeps blobs past the
// retention period (the first sweep runs at start) and exports refused
// writes and sweeps as metrics.
func TestServeBlobsSweptAndBounded(t *testing.T) {
	dir := t.TempDir()
	pre, err := blob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := pre.Put(context.Background(), []byte("old review sample"))
	young, _ := pre.Put(context.Background(), []byte("young review sample"))
	long := time.Now().Add(-72 * time.Hour)
	if err := os.Chtimes(pre.Path(old), long, long); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	b, err := openBlobs(context.Background(), BlobOptions{Dir: dir, Retention: 48 * time.Hour, MinFree: 1 << 62}, t.TempDir(), reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(context.Background(), []byte("new")); !errors.Is(err, blob.ErrNoSpace) {
		t.Errorf("Put with 4 EiB required free = %v, want ErrNoSpace", err)
	}
	if err := b.stop(); err != nil { // returns once the first sweep is done
		t.Fatal(err)
	}
	if _, err := b.Get(context.Background(), old); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("blob past retention: Get = %v, want ErrNotFound", err)
	}
	if _, err := b.Get(context.Background(), young); err != nil {
		t.Errorf("young blob: Get = %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
	}
	if got["routelab_blob_writes_refused_total"] != 1 || got["routelab_blob_swept_total"] != 1 {
		t.Errorf("metrics = %v, want 1 refused and 1 swept", got)
	}
}
