package ingestbench_test

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingestbench"
	"github.com/routelab/routelab/ingest/ingesttest"
)

func TestMain(m *testing.M) { os.Exit(ingesttest.Main(m)) }

func TestRunSmall(t *testing.T) {
	db := ingesttest.Empty(t) // only for the shared server's address
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 3000
	res, err := ingestbench.Run(ctx, ingestbench.Config{
		Events: n, ClickHouseDSN: "clickhouse://" + db.Addr + "/default", Partitions: 3,
		Consumer: ingest.ConsumerConfig{BatchSize: 1000, BatchWait: 50 * time.Millisecond}, Progress: io.Discard,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Produced != n || res.Ingested != n || res.Lost != 0 || res.Duplicates != 0 {
		t.Errorf("Run = produced %d ingested %d lost %d duplicates %d; want %d, %d, 0, 0", res.Produced, res.Ingested, res.Lost, res.Duplicates, n, n)
	}
	if res.EventsPerS <= 0 || res.DirectInsertEventsPerS <= 0 || res.Ratio <= 0 || res.E2EP99MS < res.E2EP50MS {
		t.Errorf("Run rates/latencies = %+v, want positive rates and p99 >= p50", res)
	}
	if got := db.Query(t, "SELECT count() FROM system.databases WHERE name LIKE 'bench_%'"); got != "0" {
		t.Errorf("%s bench databases left behind, want 0", got)
	}
}

func TestDecisionDeterministic(t *testing.T) {
	a, b := ingestbench.Decision(3, 42, 1), ingestbench.Decision(3, 42, 1)
	if a.EventID != b.EventID || a.Prompt != b.Prompt || a.Model != b.Model || len(a.Attempts) != len(b.Attempts) {
		t.Errorf("Decision(3, 42) differs between calls: %+v vs %+v", a, b)
	}
	if c := ingestbench.Decision(3, 43, 1); c.EventID == a.EventID {
		t.Errorf("Decision(3, 43) has the same event id as Decision(3, 42)")
	}
}
