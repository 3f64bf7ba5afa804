package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
	"github.com/routelab/routelab/events/control"
	"github.com/routelab/routelab/events/kafka"
)

// freshBound is the staleness the tests allow: short, so they run fast; the
// tests wait for Fresh to change, they never assume how soon it does.
const freshBound = 150 * time.Millisecond

func mustOpenChecked(t *testing.T, addr string) *kafka.ControlLog {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := kafka.OpenControlLog(ctx, kafka.ControlLogConfig{Brokers: []string{addr}, Topic: events.TopicKeys, CheckEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// awaitFresh polls l.Fresh(freshBound) until ok(err) holds and returns that
// error.
func awaitFresh(t *testing.T, l *kafka.ControlLog, what string, ok func(error) bool) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := l.Fresh(freshBound)
		if ok(err) {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: Fresh = %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFreshWhileFollowing(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	defer b.Close()
	w, f := mustOpenChecked(t, b.Addr()), mustOpenChecked(t, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.Fresh(freshBound); err != nil {
		t.Fatalf("Fresh right after Open = %v, want nil", err)
	}
	for i := range 20 {
		if err := w.Put(ctx, "key/k", []byte{byte('a' + i)}); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	awaitOffset(t, f, w.Offset())
	// A follower that keeps up stays fresh through later checks.
	awaitFresh(t, f, "fresh after the writes", func(err error) bool { return err == nil })
}

// A follower that stops applying records (here a subscriber that blocks,
// as a slow policy swap would) while the broker takes new ones must stop
// being fresh, and be fresh again once it catches up.
func TestFreshFailsWhileFollowerStalls(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	defer b.Close()
	w, f := mustOpenChecked(t, b.Addr()), mustOpenChecked(t, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stalled, release := make(chan struct{}), make(chan struct{})
	f.Subscribe(func(c control.Change) {
		if c.Key == "stall" {
			close(stalled)
			<-release
		}
	})
	if err := w.Put(ctx, "stall", []byte("x")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	<-stalled
	if err := w.Delete(ctx, "key/revoked"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	err := awaitFresh(t, f, "a stalled follower reported", func(err error) bool { return err != nil })
	if !strings.Contains(err.Error(), "behind") || !strings.Contains(err.Error(), events.TopicKeys) {
		t.Errorf("Fresh = %q, want it to name the topic and say the follower is behind", err)
	}
	close(release)
	awaitOffset(t, f, w.Offset())
	awaitFresh(t, f, "fresh again after catching up", func(err error) bool { return err == nil })
}

// A replica that cannot learn the topic's end from the broker cannot tell
// whether it missed a change: not fresh either.
func TestFreshFailsWhileBrokerDoesNotAnswer(t *testing.T) {
	b := brokertest.Start(t, broker.Config{})
	defer b.Close()
	f := mustOpenChecked(t, b.Addr())
	h := b.Cluster().Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: events.TopicKeys,
		Err: kerr.NotLeaderForPartition, Count: -1,
	})
	err := awaitFresh(t, f, "an unanswered check reported", func(err error) bool { return err != nil })
	if !strings.Contains(err.Error(), "last confirmed current") {
		t.Errorf("Fresh = %q, want it to say when the view was last confirmed", err)
	}
	h.Remove()
	awaitFresh(t, f, "fresh again once the broker answers", func(err error) bool { return err == nil })
}
