package kafka

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestSpoolTornTailAndReclaim(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<20, 256, nil)
	if err != nil {
		t.Fatalf("openSpool: %v", err)
	}
	for i := range 5 {
		recs := []record{{topic: "t", key: fmt.Sprint("k", i), value: []byte(fmt.Sprintf(`{"i":%d,"pad":"0123456789012345678901234567890123456789"}`, i))}}
		if err := s.append(recs); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if len(s.segs) < 2 {
		t.Fatalf("spool has %d segments, want a roll past 256 bytes", len(s.segs))
	}
	s.close()

	// A crash mid-write leaves half a frame at the tail of the last segment.
	last := filepath.Join(dir, fmt.Sprintf("%020d.spool", s.segs[len(s.segs)-1]))
	f, _ := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3})
	f.Close()

	s, err = openSpool(dir, 1<<20, 256, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if s.pending != 5 {
		t.Fatalf("reopened spool pending = %d, want 5", s.pending)
	}
	recs, pos, err := s.peek(3)
	if err != nil || len(recs) < 3 {
		t.Fatalf("peek(3) = %d records, %v; want >= 3", len(recs), err)
	}
	if recs[0].key != "k0" || recs[2].key != "k2" {
		t.Errorf("peek order = %q..%q, want k0..k2", recs[0].key, recs[2].key)
	}
	if err := s.advance(pos, len(recs)); err != nil {
		t.Fatalf("advance: %v", err)
	}
	recs, pos, err = s.peek(100)
	if err != nil || len(recs) != 2 {
		t.Fatalf("second peek = %d records, %v", len(recs), err)
	}
	if recs[len(recs)-1].key != "k4" {
		t.Errorf("last record = %q, want k4", recs[len(recs)-1].key)
	}
	if err := s.advance(pos, len(recs)); err != nil {
		t.Fatalf("advance: %v", err)
	}
	if !s.empty() || s.bytes() != 0 {
		t.Errorf("after full replay empty=%v bytes=%d, want true 0", s.empty(), s.bytes())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.spool")); len(left) != 0 {
		t.Errorf("segments left after full replay: %v", left)
	}
	// The next outage starts cleanly.
	if err := s.append([]record{{topic: "t", key: "k5", value: []byte("{}")}}); err != nil || s.pending != 1 {
		t.Errorf("append after reclaim: %v, pending %d", err, s.pending)
	}
}

func TestSpoolDiscardWhenUnreadable(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<20, 1<<20, nil)
	if err != nil {
		t.Fatalf("openSpool: %v", err)
	}
	if err := s.append([]record{{topic: "t", key: "k", value: []byte("{}")}}); err != nil {
		t.Fatalf("append: %v", err)
	}
	// Damage the frame after it was counted.
	path := s.path(s.segs[0])
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 0xff
	os.WriteFile(path, b, 0o644)
	if recs, _, err := s.peek(10); err != nil || len(recs) != 0 {
		t.Fatalf("peek on a damaged frame = %d records, %v; want 0, nil", len(recs), err)
	}
	if n := s.discard(); n != 1 || !s.empty() || s.bytes() != 0 {
		t.Errorf("discard() = %d, empty %v, bytes %d; want 1, true, 0", n, s.empty(), s.bytes())
	}
}
