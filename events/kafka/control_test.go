package kafka_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
	"github.com/routelab/routelab/events/control"
	"github.com/routelab/routelab/events/kafka"
)

func mustOpen(t *testing.T, addr string) *kafka.ControlLog {
	t.Helper()
	l, err := kafka.OpenControlLog(testCtx(t), kafka.ControlLogConfig{Brokers: []string{addr}, Topic: events.TopicPolicies})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func view(l *kafka.ControlLog) map[string]string {
	out := map[string]string{}
	for k, v := range l.All() {
		out[k] = string(v)
	}
	return out
}

// awaitOffset waits on l's change feed until it has applied everything
// before off.
func awaitOffset(t *testing.T, l *kafka.ControlLog, off int64) {
	t.Helper()
	ch := make(chan struct{}, 1)
	cancel := l.Subscribe(func(control.Change) {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	defer cancel()
	ctx := testCtx(t)
	for l.Offset() < off {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("log at offset %d, want %d: %v", l.Offset(), off, ctx.Err())
		}
	}
}

func TestTwoLogsConverge(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	ctx := testCtx(t)
	a, c := mustOpen(t, b.Addr()), mustOpen(t, b.Addr())

	// Read-your-writes: the writer sees its value as soon as Put returns.
	if err := a.Put(ctx, "policy/default", []byte("v1")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if v, ok := a.Get("policy/default"); !ok || string(v) != "v1" {
		t.Fatalf("Get after Put = %q, %v; want v1", v, ok)
	}
	if err := c.Put(ctx, "policy/default", []byte("v2")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := c.Put(ctx, "policy/canary", []byte("c1")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := a.Delete(ctx, "policy/canary"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	awaitOffset(t, c, a.Offset())
	awaitOffset(t, a, c.Offset())

	want := map[string]string{"policy/default": "v2"}
	if diff := cmp.Diff(want, view(a)); diff != "" {
		t.Errorf("view A (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, view(c)); diff != "" {
		t.Errorf("view B (-want +got):\n%s", diff)
	}
}

func TestSubscribeSnapshotThenChanges(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	ctx := testCtx(t)
	l := mustOpen(t, b.Addr())
	for _, k := range []string{"b", "a"} {
		if err := l.Put(ctx, k, []byte("1")); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	var got []string
	stop := l.Subscribe(func(c control.Change) { got = append(got, fmt.Sprintf("%s=%s del=%v", c.Key, c.Value, c.Deleted)) })
	if err := l.Put(ctx, "a", []byte("2")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := l.Delete(ctx, "b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	stop() // Put returned after apply, and apply delivers before it returns
	want := []string{"a=1 del=false", "b=1 del=false", "a=2 del=false", "b= del=true"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("subscription saw (-want +got):\n%s", diff)
	}
}

func TestStateSurvivesBrokerRestartAndCompaction(t *testing.T) {
	dir := t.TempDir()
	b := brokertest.Start(t, broker.Config{DataDir: dir})
	ctx := testCtx(t)
	l := mustOpen(t, b.Addr())
	for i := range 50 {
		if err := l.Put(ctx, fmt.Sprintf("k%d", i%5), fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	if err := l.Delete(ctx, "k0"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want := view(l)
	l.Close()
	b.Close()

	b = brokertest.Start(t, broker.Config{DataDir: dir})
	if diff := cmp.Diff(want, view(mustOpen(t, b.Addr()))); diff != "" {
		t.Errorf("view after restart (-want +got):\n%s", diff)
	}
	before := countRecords(t, b.Addr())
	b.Compact()
	if after := countRecords(t, b.Addr()); after >= before {
		t.Errorf("records before compaction %d, after %d; want fewer (cleanup.policy=compact)", before, after)
	}
	if diff := cmp.Diff(want, view(mustOpen(t, b.Addr()))); diff != "" {
		t.Errorf("view after compaction (-want +got):\n%s", diff)
	}
	if _, ok := want["k0"]; ok || len(want) != 4 || want["k4"] != "v49" {
		t.Errorf("want view = %v, expected k1..k4 with their last values", want)
	}
}

func countRecords(t *testing.T, addr string) int {
	t.Helper()
	return len(brokertest.Records(testCtx(t), t, addr, events.TopicPolicies))
}

// TestFollowsAcrossBrokerRestart: a long-lived Log (a serve replica) keeps
// following when the broker restarts under it, and a write made after the
// restart reaches it.
func TestFollowsAcrossBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	b := brokertest.Start(t, broker.Config{DataDir: dir})
	addr := b.Addr()
	ctx := testCtx(t)
	follower := mustOpen(t, addr)
	if err := follower.Put(ctx, "k", []byte("before")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	b.Close()
	b = brokertest.Start(t, broker.Config{DataDir: dir, Addr: addr})

	writer := mustOpen(t, addr)
	if err := writer.Put(ctx, "k", []byte("after")); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	awaitOffset(t, follower, writer.Offset())
	if v, _ := follower.Get("k"); string(v) != "after" {
		t.Errorf("follower Get(k) = %q after the broker restart, want after", v)
	}
	// And the follower can still write (read-your-writes) after the restart.
	if err := follower.Put(ctx, "k2", []byte("x")); err != nil {
		t.Fatalf("follower Put after restart: %v", err)
	}
	if v, ok := follower.Get("k2"); !ok || string(v) != "x" {
		t.Errorf("follower Get(k2) = %q, %v; want x", v, ok)
	}
}
