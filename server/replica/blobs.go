package replica

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routelab/routelab/blob"
)

// BlobOptions place and bound serve's blob store.
type BlobOptions struct {
	Dir       string        // "" = DATA_DIR/blobs
	Retention time.Duration // 0 = keep forever
	MinFree   uint64        // 0 = no free-space check
}

// sweptBlobs is the blob store with its retention sweeper.
type sweptBlobs struct {
	*blob.Store
	stop func() error
}

// openBlobs opens the blob store, exports its refused writes and sweeps as
// metrics, and sweeps blobs past retention every retention/24 (at most
// hourly, at least every minute) until stop.
func openBlobs(o BlobOptions, dataDir string, reg prometheus.Registerer, logger *slog.Logger) (*sweptBlobs, error) {
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
	b := &sweptBlobs{Store: st, stop: func() error { return nil }}
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
