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
// (shadow mirrors aside): 40% vs 70% success here, an effect of +0.30,
// split by the policy version serving the rest (60% on rules-2 the first
// day, 80% on trained-3 the second) and by day. Every user's requests
// succeed or fail together, so the interval over users is much wider than
// one that took the 200 requests as independent draws.
func TestHoldoutReport(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	s := experiments.Spec{ID: "holdout-ch", Layer: "routing", PrimaryMetric: "success_rate", Phase: 1, PhaseStarted: start.UnixMilli(), Unit: experiments.UnitUser,
		Arms: []experiments.Arm{{Name: "holdout", Weight: 1, Overrides: experiments.Overrides{PolicyVersion: "rules-1"}}}}
	b := ingest.NewBatch()
	for i := range 200 {
		id, user := fmt.Sprintf("req-%d", i), i/4 // users 0-12 held out, 13-49 the rest
		day := i % 4 / 2                          // two of each user's requests a day
		d := &events.Decision{Header: events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: start.Add(time.Duration(24*day)*time.Hour + time.Duration(i)*time.Second).UnixMilli(),
			Tenant: "t", RequestID: id}, Unit: fmt.Sprintf("u%d", user), Status: "ok"}
		switch {
		case i < 52:
			d.Arms = []events.Arm{{Experiment: s.ID, Arm: "holdout", Layer: "routing", Phase: 1, Unit: d.Unit}}
			d.PolicyVersion = "rules-1"
			d.QAPass = user%13 < 5 // 5 of 13 users: 20 of 52 requests
		case day == 0:
			d.PolicyVersion = "rules-2"
			d.QAPass = user%5 < 3 // 60%
		default:
			d.PolicyVersion = "trained-3"
			d.QAPass = user%5 < 4 // 80%
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
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if r.HoldoutRequests != 52 || r.RestRequests != 148 || r.HoldoutUnits != 13 || r.RestUnits != 37 || !near(r.Holdout, 20.0/52) || r.Baseline != "rules-1" {
		t.Fatalf("Holdout = %+v, want 52 requests of 13 users at 20/52 vs 148 of 37, baseline rules-1", r)
	}
	if r.Effect == nil || !near(r.Effect.Delta, r.Rest-r.Holdout) {
		t.Fatalf("effect %+v, want rest - holdout", r.Effect)
	}
	// 200 independent requests would make +0.29 certain; 50 users do not.
	naive := experiments.TwoProportion(20, 52, r.Rest*148, 148, 0.05)
	if r.Effect.SE < 1.5*naive.SE || naive.CILow <= 0 || r.Effect.CILow >= 0 {
		t.Errorf("interval over users: %+v, want well wider than the per-request %+v (each user's requests succeed together)", r.Effect, naive)
	}
	if len(r.ByPolicy) != 2 || r.ByPolicy[0].Key != "rules-2" || r.ByPolicy[1].Key != "trained-3" ||
		r.ByPolicy[0].Requests != 74 || r.ByPolicy[1].Requests != 74 || r.ByPolicy[0].Units != 37 {
		t.Fatalf("by policy %+v, want rules-2 and trained-3 with 74 requests of 37 users each", r.ByPolicy)
	}
	if r.ByPolicy[1].Value <= r.ByPolicy[0].Value || r.ByPolicy[1].Effect == nil || r.ByPolicy[1].Effect.Delta <= r.ByPolicy[0].Effect.Delta {
		t.Errorf("by policy %+v, want trained-3 ahead of rules-2", r.ByPolicy)
	}
	if len(r.Daily) != 2 || r.Daily[0].Key != "2026-11-20" || r.Daily[1].Key != "2026-11-21" || !near(r.Daily[0].HoldoutValue, 10.0/26) {
		t.Errorf("daily %+v, want 2026-11-20 and 2026-11-21 against the holdout's 10/26 each", r.Daily)
	}
}
