package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/routelab/routelab/events/broker/brokertest"
)

// testCtx is a context for a test's waits (brokertest.Context): they end
// on what they wait for, the context only on a hang.
func testCtx(t testing.TB) context.Context { return brokertest.Context(t) }

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
