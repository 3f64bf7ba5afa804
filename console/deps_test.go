package console_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/console"
	"github.com/routelab/routelab/console/consoletest"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/events/broker"
	"github.com/routelab/routelab/events/broker/brokertest"
	"github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
)

func TestMain(m *testing.M) { os.Exit(ingesttest.Main(m)) }

func testDeps(t testing.TB) console.Deps {
	t.Helper()
	return console.Deps{Users: mustUsers(t)}
}

// writerSink stands in for Kafka + ingest: it writes each review event with
// ingest's own batch writer, so the row is the one ingest would write.
type writerSink struct{ w *ingest.Writer }

func (s writerSink) Emit(ctx context.Context, r events.Review) error {
	b := ingest.NewBatch()
	b.AddReview(&r)
	return s.w.Write(ctx, b)
}

type world struct {
	db   *ingesttest.DB
	info consoletest.Info
	c    *console.Console
	base string
	// committed gets a value after each ingest round when scores travel
	// through Kafka (withKafka); nil when they are written directly.
	committed chan struct{}
}

// waitRows waits until query (a count) returns want, re-checking after
// every ingest commit; with direct writes it checks once.
func (w *world) waitRows(t testing.TB, query, want string) {
	t.Helper()
	limit := brokertest.Context(t) // only a hang ends the wait here
	for {
		got := w.db.Query(t, query)
		if got == want || w.committed == nil {
			if got != want {
				t.Errorf("%s = %s, want %s", query, got, want)
			}
			return
		}
		select {
		case <-w.committed:
		case <-limit.Done():
			t.Errorf("%s = %s after %v, want %s", query, got, brokertest.WaitLimit, want)
			return
		}
	}
}

// withKafka wires the production event path into deps: a local
// Kafka-protocol broker, kafka.Producer for scores, ingest's consumer
// group into ClickHouse.
func withKafka(t testing.TB, db *ingesttest.DB, deps *console.Deps) chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := brokertest.Start(t, broker.Config{})
	brokers := []string{b.Addr()}
	committed := make(chan struct{}, 1)
	consumer, err := ingest.NewConsumer(ingest.ConsumerConfig{Brokers: brokers, BatchWait: 20 * time.Millisecond,
		OnCommit: func([]int64, time.Time) {
			select {
			case committed <- struct{}{}:
			default:
			}
		}}, ingest.NewWriter(db.Conn, db.Database))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- consumer.Run(ctx) }()
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close(context.Background())
		cancel()
		<-done
	})
	deps.Reviews = console.ProducerReviews{P: p}
	return committed
}

// mustWorld seeds ClickHouse and blobs and serves a console over them.
func mustWorld(t testing.TB, prompts, traffic int, withAdmin bool, kafka ...bool) *world {
	t.Helper()
	db := ingesttest.ClickHouse(t)
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := consoletest.Seed(ctx, db.Conn, db.Database, blobs, consoletest.Config{
		Prompts: prompts, Traffic: traffic, Seed: 7, Reviewers: []string{"ann", "bea"}, Now: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	deps := console.Deps{Users: mustUsers(t), Data: console.NewData(db.Conn, db.Database), Blobs: blobs,
		Reviews: writerSink{ingest.NewWriter(db.Conn, db.Database)}}
	if withAdmin {
		url, brokers := mustAdminAPI(t, db)
		deps.Control = console.NewAdminClient(url, adminToken)
		pols, err := console.OpenControlPolicies(ctx, brokers)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pols.Close() })
		deps.Policies = pols
	}
	var committed chan struct{}
	if len(kafka) > 0 && kafka[0] {
		committed = withKafka(t, db, &deps)
	}
	c, base := mustConsole(t, deps)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return &world{db: db, info: info, c: c, base: base, committed: committed}
}
