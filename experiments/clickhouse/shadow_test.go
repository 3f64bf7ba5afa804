package clickhouse_test

import (
	"context"
	"encoding/json"
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

// ShadowComparison pairs mirrors with their live requests per group;
// BanditWeights reads the audited re-weightings of the current phase.
func TestShadowComparisonAndBanditWeights(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	s := experiments.Spec{ID: "shadow-ch", Phase: 1, PhaseStarted: start.UnixMilli()}
	b := ingest.NewBatch()
	hdr := func(id string, i int) events.Header {
		return events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: start.Add(time.Duration(i) * time.Second).UnixMilli(), Tenant: "t", RequestID: id}
	}
	for i := range 40 {
		live := fmt.Sprintf("req-%d", i)
		text := i%4 == 0
		b.AddDecision(&events.Decision{Header: hdr(live, i), Mode: "generate", Status: "ok", QAPass: i%2 == 0, CostUSD: 0.01, LatencyMS: 1000,
			Features: events.Features{TextHeavy: text}})
		if i%2 == 1 {
			continue // mirrored: the even ones... and the odd ones are not
		}
		b.AddDecision(&events.Decision{Header: hdr(live+":shadow", i), Mode: "generate", Status: "ok", QAPass: true, CostUSD: 0.05, LatencyMS: 3000,
			Shadow: true, LiveRequestID: live, Arms: []events.Arm{{Experiment: s.ID, Arm: "candidate", Phase: 1}}})
	}
	for e, w := range [][]float64{{0.5, 0.5}, {0.2, 0.8}} {
		sp := experiments.Spec{ID: "bandit-ch", Phase: 1, Bandit: &experiments.Bandit{Epoch: e + 1, Weights: map[string][]float64{"": w}}}
		body, _ := json.Marshal(sp)
		b.AddAudit(&events.Audit{Header: hdr(fmt.Sprintf("au-%d", e), 100+e), Action: "bandit.reweight", Subject: "bandit-ch", Actor: "m", Body: string(body)})
	}
	if err := ingest.NewWriter(db.Conn, db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	r := chexp.NewReader(db.Conn, db.Database)
	got, err := r.ShadowComparison(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]chexp.ShadowStratum{
		"image": {Group: "image", Pairs: 10, LiveQAPass: 1, ShadowQAPass: 1, LiveCost: 0.01, ShadowCost: 0.05, LiveLatency: 1000, ShadowLatency: 3000},
		"text":  {Group: "text", Pairs: 10, LiveQAPass: 1, ShadowQAPass: 1, LiveCost: 0.01, ShadowCost: 0.05, LiveLatency: 1000, ShadowLatency: 3000},
	}
	if len(got) != 2 {
		t.Fatalf("ShadowComparison = %+v, want image and text", got)
	}
	for _, g := range got {
		w := want[g.Group]
		if g.Pairs != w.Pairs || math.Abs(g.ShadowCost-w.ShadowCost) > 1e-9 || g.ShadowLatency != w.ShadowLatency || g.LiveQAPass != w.LiveQAPass {
			t.Errorf("group %s = %+v, want %+v", g.Group, g, w)
		}
	}
	hist, err := r.BanditWeights(context.Background(), experiments.Spec{ID: "bandit-ch", Phase: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[1].Epoch != 2 || hist[1].Weights[""][1] != 0.8 || !hist[0].At.Before(hist[1].At) {
		t.Errorf("BanditWeights = %+v, want epochs 1 and 2 in order, 0.8 last", hist)
	}
}
