// Package labtest is what tests that run the lab share.
package labtest

import "testing"

// Heavy marks a test that serves thousands of lab requests. Each renders,
// PNG-encodes and QA-checks an image on one goroutine (about 10 ms of CPU
// on a fresh prompt), which the race detector slows a hundredfold: such a
// test would take an hour under -race and finds no race there (the lab is
// sequential; the gateway's concurrency is raced in its own tests). So it
// is skipped under -race and -short; `make test` runs the heavy tests in a
// second pass without -race (make test-lab), named TestLab*.
func Heavy(t testing.TB) {
	t.Helper()
	if raceEnabled {
		t.Skip("a heavy lab run: skipped under -race; make test-lab runs it without")
	}
	if testing.Short() {
		t.Skip("a heavy lab run: skipped with -short")
	}
}
