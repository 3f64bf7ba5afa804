//go:build !linux

package qa

import "time"

// threadCPU falls back to the wall clock where RUSAGE_THREAD does not exist.
var start = time.Now()

func threadCPU() time.Duration { return time.Since(start) }
