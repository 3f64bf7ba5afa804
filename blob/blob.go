// Package blob is the content-addressed store for image bytes that must
// outlive a request: outputs sampled for human review and images served as
// links. A key is the SHA-256 of the bytes in hex; files live under
// DIR/ab/cdef... so one directory never holds millions of entries.
//
// Blobs are kept for a retention period (Sweep removes older ones) and a
// write that would leave the file system with less than MinFree bytes is
// refused with ErrNoSpace, so a full blob disk fails image links and
// review samples (counted, see Refused) rather than the event spool or the
// process sharing that disk. Give blobs a volume of their own where the
// spool matters (serve --blob-dir).
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrNotFound is returned by Get for an unknown key.
var ErrNotFound = errors.New("blob not found")

// ErrNoSpace is returned by Put when writing would leave less than
// Options.MinFree bytes free.
var ErrNoSpace = errors.New("blob store: disk space below the configured minimum")

// Options tune a Store. The zero value checks no free space.
type Options struct {
	// MinFree is how many bytes must stay free on the store's file system
	// after a write; 0 = no check.
	MinFree uint64
	// FreeSpace reports the bytes available to the process on the file
	// system holding dir; default statfs.
	FreeSpace func(dir string) (uint64, error)
}

// Store is a directory of blobs. Safe for concurrent use: writes go to a
// temporary file, synced, then renamed into place, and equal content has
// one name.
type Store struct {
	dir     string
	opts    Options
	refused atomic.Uint64
	swept   atomic.Uint64
	// sync makes a written file durable before it is renamed into place;
	// a test replaces it to see the order.
	sync func(*os.File) error
}

// Open returns the store under dir, creating it, with no free-space check.
func Open(dir string) (*Store, error) { return New(dir, Options{}) }

// New returns the store under dir, creating it.
func New(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	if o.FreeSpace == nil {
		o.FreeSpace = statfsFree
	}
	return &Store{dir: dir, opts: o, sync: (*os.File).Sync}, nil
}

// statfsFree is the space available to an unprivileged process.
func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Key is the content address of data.
func Key(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// Valid says whether key is a content address (64 hex digits), so a
// key from a URL never names a path outside the store.
func Valid(key string) bool {
	if len(key) != 64 {
		return false
	}
	_, err := hex.DecodeString(key)
	return err == nil
}

// Path is where key's bytes live.
func (s *Store) Path(key string) string {
	return filepath.Join(s.dir, key[:2], key[2:])
}

// Refused is how many writes ErrNoSpace turned away; Swept how many blobs
// Sweep removed.
func (s *Store) Refused() uint64 { return s.refused.Load() }
func (s *Store) Swept() uint64   { return s.swept.Load() }

// Put stores data and returns its key; storing the same bytes twice is a
// no-op that renews the blob's age for retention. The file is synced before
// it is renamed into place, so after a crash a key names its whole content
// or nothing.
func (s *Store) Put(ctx context.Context, data []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	key := Key(data)
	p := s.Path(key)
	if _, err := os.Stat(p); err == nil {
		now := time.Now()
		_ = os.Chtimes(p, now, now)
		return key, nil
	}
	if s.opts.MinFree > 0 {
		free, err := s.opts.FreeSpace(s.dir)
		if err != nil {
			return "", fmt.Errorf("put blob: free space: %w", err)
		}
		if free < s.opts.MinFree+uint64(len(data)) {
			s.refused.Add(1)
			return "", fmt.Errorf("put blob of %d bytes with %d free: %w", len(data), free, ErrNoSpace)
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("put blob: %w", err)
	}
	if err := s.sync(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("put blob: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("put blob: %w", err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("put blob: %w", err)
	}
	return key, nil
}

// Get returns the bytes stored under key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get blob: %w", err)
	}
	if !Valid(key) {
		return nil, ErrNotFound
	}
	b, err := os.ReadFile(s.Path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}

// Sweep removes blobs last written (or re-put) before now-retention, and
// temporary files a crashed Put left behind; it returns how many it
// removed. A signed link or review item naming a swept blob answers "not
// found".
func (s *Store) Sweep(now time.Time, retention time.Duration) (int, error) {
	cutoff := now.Add(-retention)
	removed := 0
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if d.IsDir() || !(strings.HasPrefix(d.Name(), ".tmp-") || len(d.Name()) == 62) {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed++
		return nil
	})
	s.swept.Add(uint64(removed))
	if err != nil {
		return removed, fmt.Errorf("sweep blobs: %w", err)
	}
	return removed, nil
}
