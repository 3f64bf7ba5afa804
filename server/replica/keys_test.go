package replica_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/control"
	evkafka "github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/server"
	"github.com/routelab/routelab/server/replica"
)

// startServeWithBroker runs serve against a fresh in-memory broker until the
// test ends.
func startServeWithBroker(t *testing.T, keysMaxStale time.Duration) (*replica.Replica, *broker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Partitions: 1})
	if err != nil {
		t.Fatalf("broker.Start: %v", err)
	}
	t.Cleanup(b.Close)
	s, err := replica.Start(ctx, replica.Options{
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Brokers: []string{b.Addr()}, DataDir: t.TempDir(), Policy: "rules",
		KeysMaxStale: keysMaxStale,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("replica.Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background(), 10*time.Second) })
	return s, b
}

// awaitStatus polls GET url (with the bearer key, if any) until it answers
// want, and returns the body.
func awaitStatus(t *testing.T, url, key string, want int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == want {
			return string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %s, want %d", url, resp.StatusCode, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A key deleted from the keys topic by a tombstone (what a lagging replica
// sees once compaction has dropped the revocation record before it) must
// stop authenticating.
func TestServeHonoursKeyTombstones(t *testing.T) {
	s, b := startServeWithBroker(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kl, err := evkafka.OpenControlLog(ctx, evkafka.ControlLogConfig{Brokers: []string{b.Addr()}, Topic: events.TopicKeys})
	if err != nil {
		t.Fatalf("OpenControlLog: %v", err)
	}
	defer kl.Close()
	secret := server.NewSecret()
	k := server.Key{ID: "key_tomb", Tenant: "acme", Hash: server.HashSecret(secret), Created: time.Now().Unix()}
	rec, _ := json.Marshal(k)
	if err := kl.Put(ctx, control.APIKeyKey(k.ID), rec); err != nil {
		t.Fatalf("put key: %v", err)
	}
	awaitStatus(t, s.URL()+"/v1/models", secret, http.StatusOK)
	if err := kl.Delete(ctx, control.APIKeyKey(k.ID)); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	awaitStatus(t, s.URL()+"/v1/models", secret, http.StatusUnauthorized)
}

// A replica whose keys follower stalls (here the broker stops answering its
// fetches) while a revocation is written must leave rotation: /readyz
// fails (the admin listener's /readyz naming the keys topic), and recovers
// once the follower catches up.
func TestServeNotReadyWhileKeysFollowerStalls(t *testing.T) {
	s, b := startServeWithBroker(t, 300*time.Millisecond)
	awaitStatus(t, s.URL()+"/readyz", "", http.StatusOK)

	var stall atomic.Bool
	stall.Store(true)
	c := b.Cluster()
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !stall.Load() {
			c.DropControl()
			return nil, nil, false
		}
		for _, tp := range req.(*kmsg.FetchRequest).Topics {
			if tp.Topic == events.TopicKeys {
				return nil, nil, true // never answered: the follower waits, times out, retries
			}
		}
		return nil, nil, false
	})
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: events.TopicKeys, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	revoked, _ := json.Marshal(server.Key{ID: "key_gone", Tenant: "acme", Hash: "00", Revoked: true})
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(control.APIKeyKey("key_gone")), Value: revoked}); err != nil {
		t.Fatalf("write revocation: %v", err)
	}
	awaitStatus(t, s.URL()+"/readyz", "", http.StatusServiceUnavailable)
	body := awaitStatus(t, s.AdminURL()+"/readyz", "", http.StatusServiceUnavailable)
	if !strings.Contains(body, events.TopicKeys) {
		t.Errorf("admin /readyz = %s, want the reason to name %s", body, events.TopicKeys)
	}
	stall.Store(false)
	awaitStatus(t, s.URL()+"/readyz", "", http.StatusOK)
}
