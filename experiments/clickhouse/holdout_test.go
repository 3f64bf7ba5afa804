package clickhouse_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
)

// The holdout's report compares the live requests inside it with the rest
// (shadow mirrors aside): 40% vs 70% success here, an effect of +0.30.
func TestHoldoutReport(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	s := experiments.Spec{ID: "holdout-ch", Layer: "routing", PrimaryMetric: "success_rate", Phase: 1, PhaseStarted: start.UnixMilli(),
		Arms: []experiments.Arm{{Name: "holdout", Weight: 1, Overrides: experiments.Overrides{PolicyVersion: "rules-1"}}}}
	b := ingest.NewBatch()
	for i := range 200 {
		id := fmt.Sprintf("req-%d", i)
		d := &events.Decision{Header: events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: start.Add(time.Duration(i) * time.Second).UnixMilli(), Tenant: "t", RequestID: id}, Status: "ok"}
		if i < 50 {
			d.Arms = []events.Arm{{Experiment: s.ID, Arm: "holdout", Layer: "routing", Phase: 1}}
			d.QAPass = i%5 < 2 // 40%
		} else {
			d.QAPass = i%10 < 7 // 70%
		}
		b.AddDecision(d)
		if i%3 == 0 { // mirrors: not live traffic
			b.AddDecision(&events.Decision{Header: events.Header{EventID: id + ":shadow", SchemaVersion: events.SchemaVersion, TS: d.TS, Tenant: "t", RequestID: id + ":shadow"}, Status: "error", Shadow: true, LiveRequestID: id})
		}
	}
	if err := ingest.NewWriter(db.Conn, db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	r, err := chexp.NewReader(db.Conn, db.Database).Holdout(context.Background(), s, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if r.HoldoutRequests != 50 || r.RestRequests != 150 || math.Abs(r.Holdout-0.4) > 1e-9 || math.Abs(r.Rest-0.7) > 1e-9 ||
		math.Abs(r.Effect.Delta-0.3) > 1e-9 || r.Effect.CILow <= 0 || r.Baseline != "rules-1" {
		t.Errorf("Holdout = %+v, want 50 at 0.40 vs 150 at 0.70, effect +0.30 above 0, baseline rules-1", r)
	}
}
