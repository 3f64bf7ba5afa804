// Package blob is the content-addressed store for image bytes that must
// outlive a request: outputs sampled for human review and images served as
// links. A key is the SHA-256 of the bytes in hex; files live under
// DIR/ab/cdef... so one directory never holds millions of entries.
package blob

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotFound is returned by Get for an unknown key.
var ErrNotFound = errors.New("blob not found")

// Store is a directory of blobs. Safe for concurrent use: writes go to a
// temporary file renamed into place, and equal content has one name.
type Store struct {
	dir string
}

// Open returns the store under dir, creating it.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Key is the content address of data.
func Key(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func valid(key string) bool {
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

// Put stores data and returns its key; storing the same bytes twice is a
// no-op.
func (s *Store) Put(data []byte) (string, error) {
	key := Key(data)
	p := s.Path(key)
	if _, err := os.Stat(p); err == nil {
		return key, nil
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
func (s *Store) Get(key string) ([]byte, error) {
	if !valid(key) {
		return nil, ErrNotFound
	}
	b, err := os.ReadFile(s.Path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}
