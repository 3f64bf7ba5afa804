package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// runMarkerFile is the file in serve's data dir that exists while serve
// runs and is removed when it stops cleanly.
const runMarkerFile = "serve.running"

// runMarker is what the file holds: serve's pid and, refreshed every
// interval, how many events its producer held in memory. Those are what a
// SIGKILL, the OOM killer or a power cut loses; the marker turns that loss
// from silent into a report at the next start.
type runMarker struct {
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	At         time.Time `json:"at"`          // when QueueDepth was read
	QueueDepth int       `json:"queue_depth"` // events in memory then
}

// startRunMarker reports a previous run that left its marker behind (it did
// not stop cleanly), then keeps a marker of its own up to date until the
// returned stop removes it.
func startRunMarker(dir string, depth func() int, every time.Duration, logger *slog.Logger) (stop func() error, err error) {
	path := filepath.Join(dir, runMarkerFile)
	if b, err := os.ReadFile(path); err == nil {
		var m runMarker
		_ = json.Unmarshal(b, &m)
		logger.Error("the previous serve did not stop cleanly (killed or crashed): the events it held in memory are lost",
			"pid", m.PID, "started", m.Started, "last_seen", m.At, "events_in_memory_then", m.QueueDepth,
			"bound", "those plus the events enqueued in the last "+every.String()+" before it died")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read run marker: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("run marker: %w", err)
	}
	m := runMarker{PID: os.Getpid(), Started: time.Now().UTC()}
	write := func() error {
		m.At, m.QueueDepth = time.Now().UTC(), depth()
		b, _ := json.Marshal(m)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	if err := write(); err != nil {
		return nil, fmt.Errorf("write run marker: %w", err)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if err := write(); err != nil {
					logger.Warn("update run marker", "err", err)
				}
			}
		}
	}()
	return func() error {
		close(quit)
		<-done
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove run marker: %w", err)
		}
		return nil
	}, nil
}
