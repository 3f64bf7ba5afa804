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

// BanditGroups returns the phase's (stratum, arm, propensity) groups of the
// primary metric as the decisions and the users' thumbs logged them.
func TestBanditGroups(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	s := experiments.Spec{ID: "bandit-ch", Name: "b", Owner: "t", Layer: "l", Unit: experiments.UnitRequest, Control: "a",
		Arms: []experiments.Arm{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}}, Kind: experiments.KindBandit,
		PrimaryMetric: "thumbs_up_rate", Status: experiments.StatusRunning, Phase: 1, PhaseStarted: start.UnixMilli()}
	b := ingest.NewBatch()
	type key struct {
		st  string
		arm int
		p   float64
	}
	want := map[key]*experiments.LoggedGroup{}
	for i := range 400 {
		st := []string{"text", "image"}[i%2]
		arm := (i / 2) % 2
		p := []float64{0.5, 0.9}[(i/4)%2]
		up := i%3 == 0
		id := fmt.Sprintf("req-%d", i)
		ts := start.Add(time.Duration(i) * time.Second)
		b.AddDecision(&events.Decision{Header: events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: ts.UnixMilli(), Tenant: "t", RequestID: id},
			Status: "ok", QAPass: true, Images: 1,
			Arms: []events.Arm{{Experiment: "other", Arm: "x", Layer: "o", Phase: 1}, {Experiment: s.ID, Arm: s.Arms[arm].Name, Layer: "l", Phase: 1, Unit: id, Propensity: p, Stratum: st}}})
		if up {
			// twice: a thumbs up counts once per request
			for k := range 2 {
				b.AddSignal(&events.Signal{Header: events.Header{EventID: fmt.Sprintf("%s-up%d", id, k), SchemaVersion: events.SchemaVersion, TS: ts.UnixMilli() + 1000, Tenant: "t", RequestID: id}, Signal: "thumbs_up", Value: 1})
			}
		}
		g := want[key{st, arm, p}]
		if g == nil {
			g = &experiments.LoggedGroup{Stratum: st, Arm: arm, Propensity: p}
			want[key{st, arm, p}] = g
		}
		g.N++
		if up {
			g.Sum++
			g.SumSq++
		}
	}
	// before the phase: not read
	b.AddDecision(&events.Decision{Header: events.Header{EventID: "old", SchemaVersion: events.SchemaVersion, TS: start.Add(-time.Hour).UnixMilli(), Tenant: "t", RequestID: "old"},
		Status: "ok", Arms: []events.Arm{{Experiment: s.ID, Arm: "a", Layer: "l", Phase: 1, Propensity: 0.5, Stratum: "text"}}})
	if err := ingest.NewWriter(db.Conn, db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	got, err := chexp.NewReader(db.Conn, db.Database).BanditGroups(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("BanditGroups = %d groups %+v, want %d", len(got), got, len(want))
	}
	for _, g := range got {
		w := want[key{g.Stratum, g.Arm, g.Propensity}]
		if w == nil || g.N != w.N || math.Abs(g.Sum-w.Sum) > 1e-9 || math.Abs(g.SumSq-w.SumSq) > 1e-9 {
			t.Errorf("group %+v, want %+v", g, w)
		}
	}
}
