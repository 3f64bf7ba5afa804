package main

import (
	"errors"
	"math"
	"runtime/debug"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	const meminfo = "MemTotal:       24683744 kB\nMemFree:        1000 kB\n"
	tests := []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"machine", map[string]string{"/proc/meminfo": meminfo}, 24683744 * 1024 / 4 * 3},
		{"cgroup below the machine", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "4294967296\n"}, 4294967296 / 4 * 3},
		{"cgroup unlimited", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "max\n"}, 24683744 * 1024 / 4 * 3},
		{"nothing readable", nil, 0},
	}
	for _, tt := range tests {
		read := func(p string) ([]byte, error) {
			if s, ok := tt.files[p]; ok {
				return []byte(s), nil
			}
			return nil, errors.New("absent")
		}
		if got := memoryLimit(read); got != tt.want {
			t.Errorf("%s: memoryLimit = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestServeSetsMemoryLimit: the processes that raise GOGC also get a soft
// memory limit by default (there was none), and GOMEMLIMIT wins.
func TestServeSetsMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	applyMemoryLimit(Env{Getenv: func(string) string { return "" }})
	if got := debug.SetMemoryLimit(-1); got == math.MaxInt64 {
		t.Errorf("memory limit after applyMemoryLimit = none, want one")
	}
	debug.SetMemoryLimit(math.MaxInt64)
	applyMemoryLimit(Env{Getenv: func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return ""
	}})
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit with GOMEMLIMIT set = %d, want it left to the runtime", got)
	}
}
