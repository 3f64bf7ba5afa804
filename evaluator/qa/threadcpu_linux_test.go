package qa

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time of the calling OS thread (the benchmark locks
// its goroutine to one): on a machine shared with other builds, wall time
// counts the time the thread waited for a core; this does not.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD, not in package syscall
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
