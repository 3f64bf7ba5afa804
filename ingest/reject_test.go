package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
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

// poisonPrompt marks a decision that mustRefusePoison makes ClickHouse
// refuse.
const poisonPrompt = "poison"

// mustRefusePoison makes db's ClickHouse refuse to insert any decision whose
// prompt is poisonPrompt, the way a value ClickHouse cannot store is refused:
// a materialized view on decisions whose throwIf fails the whole insert
// block that holds such a row (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO).
func mustRefusePoison(t *testing.T, db *ingesttest.DB) {
	t.Helper()
	q := fmt.Sprintf("CREATE MATERIALIZED VIEW %s.poison_guard ENGINE = Memory AS SELECT throwIf(prompt = '%s') AS refused FROM %s.decisions",
		db.Database, poisonPrompt, db.Database)
	if err := db.Conn.Exec(context.Background(), q); err != nil {
		t.Fatalf("create poison guard: %v", err)
	}
}

func poisonDecision(id string, ts int64) *events.Decision {
	d := decision(id, ts)
	d.Prompt = poisonPrompt
	return d
}

func TestWriterRejectsPoisonRowsAndInsertsTheRest(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	mustRefusePoison(t, db)
	w := ingest.NewWriter(db.Conn, db.Database)
	b := ingest.NewBatch()
	const ts = int64(1764000000123)
	poison := map[int]bool{7: true, 33: true, 34: true}
	for i := range 50 {
		if poison[i] {
			b.AddDecision(poisonDecision(fmt.Sprint("p", i), ts))
		} else {
			b.AddDecision(decision(fmt.Sprint("d", i), ts))
		}
	}
	b.AddSignal(&events.Signal{Header: header("s1", ts), Signal: "thumbs_up", Value: 1})

	err := w.Write(context.Background(), b)
	var rej *ingest.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Write = %v, want a *RejectedError", err)
	}
	var got []int
	for _, r := range rej.Rejected {
		got = append(got, r.Index)
		if r.Table != ingest.TableDecisions {
			t.Errorf("rejection %d in table %q, want %q", r.Index, r.Table, ingest.TableDecisions)
		}
		if r.Err == nil {
			t.Errorf("rejection %d has no error", r.Index)
		}
	}
	slices.Sort(got)
	if want := []int{7, 33, 34}; !slices.Equal(got, want) {
		t.Errorf("rejected indexes = %v, want %v", got, want)
	}
	if got := db.Query(t, "SELECT count() FROM decisions FINAL WHERE prompt != 'poison'"); got != "47" {
		t.Errorf("good decisions inserted = %s, want 47", got)
	}
	if got := db.Count(t, ingest.TableSignals); got != 1 {
		t.Errorf("count(signals FINAL) = %d, want 1 (tables after the refused rows' are written too)", got)
	}
}

// TestConsumerDeadLettersRefusedEvents: an event that decodes but that
// ClickHouse refuses must not hold up its partition. It goes to the
// dead-letter topic with the reason and ClickHouse's message, every other
// event is inserted, and the offsets move past it.
func TestConsumerDeadLettersRefusedEvents(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	mustRefusePoison(t, db)
	b := brokertest.Start(t, broker.Config{Partitions: 4})
	values := decisions(t, "before", 100)
	poison := mustJSON(t, poisonDecision("poison-1", time.Now().UnixMilli()))
	values = append(values, poison)
	values = append(values, decisions(t, "after", 100)...)
	produce(t, b.Addr(), events.TopicDecisions, values...)

	c := startConsumer(t, b.Addr(), db, ingest.ConsumerConfig{GroupID: "refused", BatchSize: 64})
	waitFor(t, "every offset committed", func() bool {
		return committed(t, b.Addr(), "refused", events.TopicDecisions, 4) == int64(len(values))
	})
	if got := db.Query(t, "SELECT count() FROM decisions FINAL WHERE prompt != 'poison'"); got != "200" {
		t.Errorf("good decisions inserted = %s, want 200", got)
	}
	if s := c.Stats(); s.Rejected != 1 || s.DeadLettered != 1 || s.Inserted != 200 {
		t.Errorf("Stats = %+v, want Rejected 1, DeadLettered 1, Inserted 200", s)
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: events.TopicDeadLetter, GroupID: "refused-check", StartOffset: kafka.FirstOffset, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("read dead-letter topic: %v", err)
	}
	hs := map[string]string{}
	for _, h := range m.Headers {
		hs[h.Key] = string(h.Value)
	}
	if string(m.Value) != string(poison) {
		t.Errorf("dead letter = %q, want the original bytes %q", m.Value, poison)
	}
	if hs[ingest.HeaderReason] != ingest.ReasonRejected || hs[ingest.HeaderSourceTopic] != events.TopicDecisions || hs[ingest.HeaderSourceOffset] == "" {
		t.Errorf("dead-letter headers = %v, want reason %s, source topic and offset", hs, ingest.ReasonRejected)
	}
	if want := "throwIf"; !strings.Contains(hs[ingest.HeaderDetail], want) {
		t.Errorf("dead-letter detail = %q, want ClickHouse's message (naming %s)", hs[ingest.HeaderDetail], want)
	}
}

// TestConsumerOutlivesBrokerRestart: a consumer whose broker goes away
// before its first message must keep trying, not return (which ended
// `routelab ingest` with status 0 and left the events in Kafka), and ingest
// what is produced once the broker is back on the same address and data.
func TestConsumerOutlivesBrokerRestart(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := broker.Config{Addr: fmt.Sprintf("127.0.0.1:%d", port), DataDir: t.TempDir(), Partitions: 2}
	start := func() *broker.Broker {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := broker.Start(ctx, cfg)
		if err != nil {
			t.Fatalf("broker.Start: %v", err)
		}
		return b
	}
	b := start()
	c, err := ingest.NewConsumer(ingest.ConsumerConfig{Brokers: []string{b.Addr()}, GroupID: "restart", BackoffMax: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}, ingest.NewWriter(db.Conn, db.Database))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	b.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for c.Stats().FetchErrors == 0 {
		select {
		case err := <-ran:
			ran <- err
			t.Fatalf("Run returned %v while the broker was away, want it to keep trying", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no failed fetch in 2 minutes with the broker away")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b = start()
	defer b.Close()
	produce(t, b.Addr(), events.TopicDecisions, decisions(t, "back", 50)...)
	waitFor(t, "events produced after the restart inserted", func() bool { return c.Stats().Inserted >= 50 })
	if got := db.Count(t, ingest.TableDecisions); got != 50 {
		t.Errorf("count(decisions FINAL) = %d, want 50", got)
	}
}
