package kafka_test

import (
	"context"
	"testing"
	"time"
)

// waitLimit bounds the waits of these tests only so that a hang fails with
// a message instead of at go test's -timeout. The waits themselves end on
// what they wait for (a counter, a record read, an offset applied): a
// 2-core machine running the whole suite under -race has needed over a
// minute for what takes 9 s alone, so no wait may be a timing budget.
const waitLimit = 3 * time.Minute

// testCtx is a context for a test's waits: it ends with the test, or after
// waitLimit.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// waitFor waits until cond, a condition on the producer's own counters,
// holds. The producer has no change feed to wait on, so it looks every few
// milliseconds; the condition, not a sleep, ends the wait.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
