package replica

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadURLSecret: a configured secret is used when long enough; without
// one, the secret kept under the data dir is made once and read back, so
// links survive a restart and replicas sharing the data dir agree.
func TestLoadURLSecret(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("s", minURLSecret)
	if got, err := loadURLSecret(long, dir); err != nil || string(got) != long {
		t.Errorf("configured secret = %q, %v; want it", got, err)
	}
	if _, err := loadURLSecret("short", dir); err == nil {
		t.Error("a 5-character secret was accepted")
	}
	first, err := loadURLSecret("", dir)
	if err != nil || len(first) < minURLSecret {
		t.Fatalf("made secret = %q, %v; want %d+ characters", first, err, minURLSecret)
	}
	again, err := loadURLSecret("", dir)
	if err != nil || string(again) != string(first) {
		t.Errorf("second start = %q, %v; want the kept %q", again, err, first)
	}
	fi, err := os.Stat(filepath.Join(dir, "url-secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("url-secret file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}
