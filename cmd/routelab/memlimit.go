package main

import (
	"bufio"
	"bytes"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimit is the soft memory limit (runtime/debug.SetMemoryLimit) a
// process runs under when GOMEMLIMIT is not set: three quarters of the
// memory it may use, its cgroup's memory.max when one is set, else the
// machine's MemTotal. With GOGC at 400 the heap may grow to five times the
// live heap between collections; a burst of large bodies or decoded
// references would then meet the kernel's OOM killer before the collector.
// Under the limit the collector runs earlier instead. 0 when neither is
// readable.
func memoryLimit(readFile func(string) ([]byte, error)) int64 {
	var avail int64
	if b, err := readFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			avail = n
		}
	}
	if b, err := readFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 && (avail == 0 || kb*1024 < avail) {
					avail = kb * 1024
				}
			}
		}
	}
	return avail / 4 * 3
}

// applyMemoryLimit sets memoryLimit unless GOMEMLIMIT is in the environment
// (the runtime read it already).
func applyMemoryLimit(env Env) {
	if env.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if n := memoryLimit(os.ReadFile); n > 0 {
		debug.SetMemoryLimit(n)
	}
}
