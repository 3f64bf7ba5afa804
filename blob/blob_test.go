package blob

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustNew(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := New(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPutSyncsBeforeRename: the bytes are synced while the file still has
// its temporary name, so a crash never leaves a key naming a short file.
func TestPutSyncsBeforeRename(t *testing.T) {
	s := mustNew(t, Options{})
	data := []byte("png bytes")
	var synced []string
	s.sync = func(f *os.File) error {
		if _, err := os.Stat(s.Path(Key(data))); err == nil {
			t.Error("synced after the rename")
		}
		synced = append(synced, filepath.Base(f.Name()))
		return f.Sync()
	}
	key, err := s.Put(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || !strings.HasPrefix(synced[0], ".tmp-") {
		t.Errorf("synced %q, want the one temporary file", synced)
	}
	if b, err := s.Get(context.Background(), key); err != nil || string(b) != string(data) {
		t.Errorf("Get = %q, %v", b, err)
	}
	s.sync = func(*os.File) error { return errors.New("disk gone") }
	if _, err := s.Put(context.Background(), []byte("other")); err == nil {
		t.Error("a failed sync was not reported")
	}
	if _, err := s.Get(context.Background(), Key([]byte("other"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after a failed sync = %v, want ErrNotFound", err)
	}
}

// TestPutRefusedBelowMinFree: a write that would leave less than MinFree
// bytes is refused with ErrNoSpace and counted; nothing is written.
func TestPutRefusedBelowMinFree(t *testing.T) {
	free := uint64(1 << 20)
	s := mustNew(t, Options{MinFree: 1 << 20, FreeSpace: func(string) (uint64, error) { return free, nil }})
	if _, err := s.Put(context.Background(), []byte("x")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Put with exactly MinFree free = %v, want ErrNoSpace", err)
	}
	if _, err := s.Get(context.Background(), Key([]byte("x"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused blob was written: %v", err)
	}
	if s.Refused() != 1 {
		t.Errorf("Refused() = %d, want 1", s.Refused())
	}
	free = 2 << 20
	if _, err := s.Put(context.Background(), []byte("x")); err != nil {
		t.Errorf("Put with room = %v", err)
	}
}

// TestSweepRemovesOldBlobs: blobs older than the retention period and
// leftover temporary files go; younger ones and re-put ones stay.
func TestSweepRemovesOldBlobs(t *testing.T) {
	s := mustNew(t, Options{})
	now := time.Now()
	old, err := s.Put(context.Background(), []byte("old"))
	if err != nil {
		t.Fatal(err)
	}
	renewed, _ := s.Put(context.Background(), []byte("renewed"))
	young, _ := s.Put(context.Background(), []byte("young"))
	long := now.Add(-48 * time.Hour)
	for _, k := range []string{old, renewed} {
		if err := os.Chtimes(s.Path(k), long, long); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(filepath.Dir(s.Path(old)), ".tmp-123")
	if err := os.WriteFile(tmp, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(tmp, long, long)
	if _, err := s.Put(context.Background(), []byte("renewed")); err != nil { // used again: young again
		t.Fatal(err)
	}
	n, err := s.Sweep(now, 24*time.Hour)
	if err != nil || n != 2 {
		t.Errorf("Sweep = %d, %v; want 2 (the old blob and the temporary file)", n, err)
	}
	for k, want := range map[string]bool{old: false, renewed: true, young: true} {
		if _, err := s.Get(context.Background(), k); (err == nil) != want {
			t.Errorf("after sweep, Get(%s) = %v, want present %v", k[:8], err, want)
		}
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover temporary file still there: %v", err)
	}
	if s.Swept() != 2 {
		t.Errorf("Swept() = %d, want 2", s.Swept())
	}
}
