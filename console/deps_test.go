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
}

// mustWorld seeds ClickHouse and blobs and serves a console over them.
func mustWorld(t testing.TB, prompts, traffic int, withAdmin bool) *world {
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
		deps.Control = console.NewAdminClient(mustAdminAPI(t, db), adminToken)
	}
	c, base := mustConsole(t, deps)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return &world{db: db, info: info, c: c, base: base}
}
