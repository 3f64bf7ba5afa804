package clickhouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
)

// Routed counts a canary arm's decisions of the current phase and those
// routed by the candidate's version; other arms, phases and experiments do
// not count.
func TestRouted(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	s := experiments.Spec{ID: "exp-canary", Phase: 2, PhaseStarted: start.UnixMilli()}
	b := ingest.NewBatch()
	n := 0
	add := func(exp, arm string, phase int, version string, at time.Time) {
		n++
		b.AddDecision(&events.Decision{
			Header: hdr(n, at), Unit: fmt.Sprintf("u%d", n), Status: "ok", PolicyVersion: version,
			Arms: []events.Arm{{Experiment: exp, Arm: arm, Phase: phase, Unit: fmt.Sprintf("u%d", n)}},
		})
	}
	for range 7 {
		add(s.ID, "candidate", 2, "cand-1", start.Add(time.Minute))
	}
	for range 3 {
		add(s.ID, "candidate", 2, "live-1", start.Add(time.Minute)) // a replica that did not find cand-1
	}
	add(s.ID, "live", 2, "live-1", start.Add(time.Minute))
	add(s.ID, "candidate", 1, "cand-1", start.Add(-time.Minute)) // the previous phase
	add("other", "candidate", 2, "cand-1", start.Add(time.Minute))
	if err := ingest.NewWriter(db.Conn, db.Database).Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	total, byCand, err := chexp.NewReader(db.Conn, db.Database).Routed(ctx, s, "candidate", "cand-1")
	if err != nil {
		t.Fatal(err)
	}
	if total != 10 || byCand != 7 {
		t.Errorf("Routed(candidate, cand-1) = %d, %d; want 10, 7", total, byCand)
	}
}
