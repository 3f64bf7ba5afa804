// Package labtest is what tests that run the lab, and other heavy tests,
// share.
package labtest

import "testing"

// Heavy marks a test that serves thousands of lab requests, or a fault
// scenario that drives a serve process under load. Each request renders,
// PNG-encodes and QA-checks an image (about 10 ms of CPU on a fresh
// prompt), which the race detector slows a hundredfold: such a test takes
// minutes to an hour under -race and finds no race there (the lab is
// sequential; a fault scenario's serve is a child process; the gateway's,
// server's and producer's concurrency is raced in their own tests). So it
// is skipped under -race and -short; `make test` runs the heavy tests
// (named TestLab* or TestFault*, and the few the Makefile's HEAVY_RUN names)
// in a second pass without -race (make test-heavy).
func Heavy(t testing.TB) {
	t.Helper()
	if raceEnabled {
		t.Skip("a heavy test: skipped under -race; make test-heavy runs it without")
	}
	if testing.Short() {
		t.Skip("a heavy test: skipped with -short")
	}
}
