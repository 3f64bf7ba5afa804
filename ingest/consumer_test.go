package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/chlocal"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/segmentio/kafka-go"
)

func produce(t *testing.T, addr, topic string, values ...[]byte) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000}
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: v}
	}
	if err := w.WriteMessages(brokertest.Context(t), msgs...); err != nil {
		t.Fatalf("produce %d to %s: %v", len(values), topic, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decisions(t *testing.T, prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = mustJSON(t, decision(fmt.Sprintf("%s-%d", prefix, i), time.Now().UnixMilli()))
	}
	return out
}

// startConsumer runs a consumer until the test ends and returns it.
func startConsumer(t *testing.T, brokerAddr string, conn *ingesttest.DB, cfg ingest.ConsumerConfig) *ingest.Consumer {
	t.Helper()
	cfg.Brokers = []string{brokerAddr}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 200 * time.Millisecond
	}
	c, err := ingest.NewConsumer(cfg, ingest.NewWriter(conn.Conn, conn.Database))
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

// waitFor waits until cond, a condition on the consumer's counters or the
// group's committed offsets, holds. Neither has a change feed, so it looks
// every 10 ms; the condition ends the wait, not a time budget
// (brokertest.Context only turns a hang into a failure).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := brokertest.Context(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// committed sums the group's committed offsets over a topic's partitions.
func committed(t *testing.T, addr, group, topic string, partitions int) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	var sum int64
	for _, p := range resp.Topics[topic] {
		if p.CommittedOffset > 0 {
			sum += p.CommittedOffset
		}
	}
	return sum
}

func TestConsumerExactCounts(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	b := brokertest.Start(t, broker.Config{Partitions: 4})
	const n = 3000
	produce(t, b.Addr(), events.TopicDecisions, decisions(t, "d", n)...)
	var qa, sig, rev, aud [][]byte
	for i := range 50 {
		id := fmt.Sprint(i)
		qa = append(qa, mustJSON(t, events.QAResult{Header: header("q"+id, time.Now().UnixMilli()), Model: "m", Pass: true}))
		sig = append(sig, mustJSON(t, events.Signal{Header: header("s"+id, time.Now().UnixMilli()), Signal: "download"}))
		rev = append(rev, mustJSON(t, events.Review{Header: header("r"+id, time.Now().UnixMilli()), Kind: "score"}))
		aud = append(aud, mustJSON(t, events.Audit{Header: header("a"+id, time.Now().UnixMilli()), Action: "jobs.drift"}))
	}
	produce(t, b.Addr(), events.TopicQA, qa...)
	produce(t, b.Addr(), events.TopicSignals, sig...)
	produce(t, b.Addr(), events.TopicReviews, rev...)
	produce(t, b.Addr(), events.TopicAudit, aud...)

	c := startConsumer(t, b.Addr(), db, ingest.ConsumerConfig{GroupID: "exact", BatchSize: 500, Workers: 2})
	// Two members mean a rebalance, which may redeliver a round: wait for the
	// commits, not for a count of inserts.
	waitFor(t, "all offsets committed", func() bool {
		sum := committed(t, b.Addr(), "exact", events.TopicDecisions, 4)
		for _, topic := range []string{events.TopicQA, events.TopicSignals, events.TopicReviews, events.TopicAudit} {
			sum += committed(t, b.Addr(), "exact", topic, 4)
		}
		return sum == n+200
	})
	for table, want := range map[string]uint64{ingest.TableDecisions: n, ingest.TableQA: 50, ingest.TableSignals: 50, ingest.TableReviews: 50, ingest.TableAudit: 50} {
		if got := db.Count(t, table); got != want {
			t.Errorf("count(%s FINAL) = %d, want %d", table, got, want)
		}
	}
	if got := committed(t, b.Addr(), "exact", events.TopicDecisions, 4); got != n {
		t.Errorf("committed offsets on decisions = %d, want %d", got, n)
	}
	if s := c.Stats(); s.Inserted < n+200 || s.DeadLettered != 0 {
		t.Errorf("Stats = %+v, want Inserted >= %d, DeadLettered 0", s, n+200)
	}
}

func TestConsumerDuplicateDeliveryCollapses(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	b := brokertest.Start(t, broker.Config{Partitions: 4})
	const n = 500
	batch := decisions(t, "dup", n)
	produce(t, b.Addr(), events.TopicDecisions, batch...)
	produce(t, b.Addr(), events.TopicDecisions, batch...) // the producer retried everything
	c := startConsumer(t, b.Addr(), db, ingest.ConsumerConfig{GroupID: "dup"})
	waitFor(t, "both deliveries inserted", func() bool { return c.Stats().Inserted >= 2*n })
	if got := db.Count(t, ingest.TableDecisions); got != n {
		t.Errorf("count(decisions FINAL) = %d, want %d", got, n)
	}
	if got := db.Query(t, "SELECT uniqExact(event_id) FROM decisions"); got != fmt.Sprint(n) {
		t.Errorf("uniqExact(event_id) = %s, want %d", got, n)
	}
}

func TestConsumerDeadLetters(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	b := brokertest.Start(t, broker.Config{Partitions: 4})
	v9 := decision("v9", time.Now().UnixMilli())
	v9.SchemaVersion = 9
	bad := map[string][]byte{
		events.ReasonMalformedJSON:  []byte(`{"event_id": "x", `),
		events.ReasonUnknownVersion: mustJSON(t, v9),
		events.ReasonMissingTenant:  []byte(`{"event_id":"nt","schema_version":1,"ts":1764000000000,"request_id":"r"}`),
	}
	var values [][]byte
	values = append(values, decisions(t, "before", 100)...)
	for _, v := range bad {
		values = append(values, v)
	}
	values = append(values, decisions(t, "after", 100)...)
	produce(t, b.Addr(), events.TopicDecisions, values...)

	c := startConsumer(t, b.Addr(), db, ingest.ConsumerConfig{GroupID: "dlq", BatchSize: 50})
	waitFor(t, "good events inserted", func() bool { return c.Stats().Inserted >= 200 })
	if got := db.Count(t, ingest.TableDecisions); got != 200 {
		t.Errorf("count(decisions FINAL) = %d, want 200", got)
	}
	if got := committed(t, b.Addr(), "dlq", events.TopicDecisions, 4); got != int64(len(values)) {
		t.Errorf("committed offsets = %d, want %d (the pipeline moved past the bad messages)", got, len(values))
	}

	r := brokertest.NewReader(t, kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: events.TopicDeadLetter, GroupID: "dlq-check", StartOffset: kafka.FirstOffset})
	ctx := brokertest.Context(t)
	got := map[string][]byte{}
	for len(got) < len(bad) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read dead-letter topic after %d records: %v", len(got), err)
		}
		hs := map[string]string{}
		for _, h := range m.Headers {
			hs[h.Key] = string(h.Value)
		}
		if hs[ingest.HeaderSourceTopic] != events.TopicDecisions || hs[ingest.HeaderSourceOffset] == "" {
			t.Errorf("dead-letter headers = %v, want source topic and offset", hs)
		}
		got[hs[ingest.HeaderReason]] = m.Value
	}
	for reason, want := range bad {
		if string(got[reason]) != string(want) {
			t.Errorf("dead letter with reason %s = %q, want the original bytes %q", reason, got[reason], want)
		}
	}
}

// TestConsumerClickHouseOutage stops ClickHouse mid-stream: the consumer must
// not commit while inserts fail, and once ClickHouse is back every event
// lands exactly once.
func TestConsumerClickHouseOutage(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := chlocal.Start(ctx, chlocal.Config{Dir: dir})
	if err != nil {
		t.Fatalf("start clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	conn, dbName, err := ingest.Open(ctx, srv.DSN("outage"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	db := &ingesttest.DB{Addr: srv.Addr, HTTPURL: srv.HTTPURL, Database: dbName, Conn: conn}
	b := brokertest.Start(t, broker.Config{Partitions: 4})

	const n = 400
	produce(t, b.Addr(), events.TopicDecisions, decisions(t, "one", n)...)
	c := startConsumer(t, b.Addr(), db, ingest.ConsumerConfig{GroupID: "outage", BatchSize: 100, BackoffMin: 20 * time.Millisecond})
	waitFor(t, "first half inserted", func() bool { return c.Stats().Inserted >= n })

	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	began := time.Now()
	if err := srv.Stop(stopCtx); err != nil {
		t.Fatalf("stop clickhouse: %v", err)
	}
	t.Logf("clickhouse-server stopped in %v", time.Since(began))
	produce(t, b.Addr(), events.TopicDecisions, decisions(t, "two", n)...)
	waitFor(t, "failed inserts while ClickHouse is down", func() bool { return c.Stats().InsertErrors >= 3 })
	if got := committed(t, b.Addr(), "outage", events.TopicDecisions, 4); got != n {
		t.Fatalf("committed offsets while ClickHouse is down = %d, want %d (no commit before insert)", got, n)
	}
	if got := c.Stats().Inserted; got != n {
		t.Fatalf("Inserted while ClickHouse is down = %d, want %d", got, n)
	}

	host, port := srv.Addr, 0
	fmt.Sscanf(host[len("127.0.0.1:"):], "%d", &port)
	var httpPort int
	fmt.Sscanf(srv.HTTPURL[len("http://127.0.0.1:"):], "%d", &httpPort)
	srv2, err := chlocal.Start(ctx, chlocal.Config{Dir: dir, TCPPort: port, HTTPPort: httpPort})
	if err != nil {
		t.Fatalf("restart clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = srv2.Stop(context.Background()) })
	waitFor(t, "second half inserted after restart", func() bool { return c.Stats().Inserted >= 2*n })
	if got := db.Count(t, ingest.TableDecisions); got != 2*n {
		t.Errorf("count(decisions FINAL) = %d, want %d", got, 2*n)
	}
	if got := committed(t, b.Addr(), "outage", events.TopicDecisions, 4); got != 2*n {
		t.Errorf("committed offsets after recovery = %d, want %d", got, 2*n)
	}
}

// A consumer that starts behind fills whole rounds instead of inserting
// every BatchWait: few, large inserts are what MergeTree wants.
func TestConsumerBacklogFillsRounds(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	b := brokertest.Start(t, broker.Config{Partitions: 4})
	const n, size = 6000, 1000
	produce(t, b.Addr(), events.TopicDecisions, decisions(t, "backlog", n)...)
	c := startConsumer(t, b.Addr(), db, ingest.ConsumerConfig{GroupID: "backlog", BatchSize: size, BatchWait: 10 * time.Millisecond, BatchMaxWait: time.Minute})
	waitFor(t, "backlog committed", func() bool { return committed(t, b.Addr(), "backlog", events.TopicDecisions, 4) == n })
	// n/size rounds when every round is full; allow a few short ones (a
	// fetch that stalls for 20ms under load looks like "caught up").
	s := c.Stats()
	t.Logf("stats %+v", s)
	if s.Rounds > n/size+4 {
		t.Errorf("backlog of %d with BatchSize %d took %d rounds, want about %d", n, size, s.Rounds, n/size)
	}
	if got := db.Count(t, ingest.TableDecisions); got != n {
		t.Errorf("count(decisions FINAL) = %d, want %d", got, n)
	}
}
