package clickhouse_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
)

func TestMain(m *testing.M) { os.Exit(ingesttest.Main(m)) }

// world is a seeded experiment's traffic and what the analysis must find.
type world struct {
	spec  experiments.Spec
	batch *ingest.Batch
	want  map[string]experiments.ArmData // per arm, computed here from the raw events
	// costSpeed per arm, computed here, for the default latency budgets
	costSpeed map[string]experiments.CostSpeedArm
}

func mustWorld(t *testing.T, seed uint64) world {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	s := experiments.Spec{ID: "exp-ch", Name: "ch", Owner: "t", Layer: "l", Unit: experiments.UnitUser, Control: "control",
		Arms:          []experiments.Arm{{Name: "control", Weight: 1}, {Name: "treatment", Weight: 1}},
		PrimaryMetric: "success_rate", Status: experiments.StatusRunning, Phase: 2, PhaseStarted: start.UnixMilli()}
	w := world{spec: s, batch: ingest.NewBatch(), want: map[string]experiments.ArmData{}, costSpeed: map[string]experiments.CostSpeedArm{}}
	for _, a := range s.Arms {
		w.want[a.Name] = experiments.ArmData{Arm: a.Name, Ratios: map[string]experiments.RatioMoments{}}
		w.costSpeed[a.Name] = experiments.CostSpeedArm{Arm: a.Name}
	}
	n := 0
	for u := range 300 {
		user := fmt.Sprintf("user-%d", u)
		arm := s.Arms[u%2].Name
		reqs := 1 + rng.IntN(6)
		var succ, qap, qaf, errs, esc, lat, cost, imgs, up, down, pre, fast float64
		// pre-period traffic of the same user (no experiment)
		for range rng.IntN(3) {
			n++
			ok := rng.Float64() < 0.6
			w.batch.AddDecision(&events.Decision{Header: hdr(n, start.Add(-time.Duration(1+rng.IntN(48))*time.Hour)), Unit: user, Status: "ok", QAPass: ok, Images: 1})
			if ok {
				pre++
			}
		}
		// a decision of this experiment's earlier phase: not in this phase's
		// analysis, but part of the user's pre-period
		n++
		pre++
		w.batch.AddDecision(&events.Decision{Header: hdr(n, start.Add(-time.Minute)), Unit: user, Status: "ok", QAPass: true, Images: 1,
			Arms: []events.Arm{{Experiment: s.ID, Arm: arm, Layer: "l", Phase: 1, Unit: user}}})
		for range reqs {
			n++
			d := &events.Decision{Header: hdr(n, start.Add(time.Duration(rng.IntN(3600))*time.Second)), Unit: user, Status: "ok", Images: 1,
				LatencyMS: int64(1000 + rng.IntN(4000)), CostUSD: 0.01 * float64(1+rng.IntN(5)),
				Arms: []events.Arm{{Experiment: "other", Arm: "x", Layer: "o", Phase: 1, Unit: user}, {Experiment: s.ID, Arm: arm, Layer: "l", Phase: 2, Unit: user}}}
			switch {
			case rng.Float64() < 0.05:
				d.Status, d.Images, d.CostUSD = "error", 0, 0
				errs++
			case rng.Float64() < 0.62:
				d.QAPass = true
				succ++
				qap++
				// a third of the users' requests set a 3 s budget; the
				// rest get the standard tier's (30 s, none is slower)
				if d.Features.MaxLatency = int64(3000 * (u % 3 / 2)); d.Features.MaxLatency == 0 || d.LatencyMS <= d.Features.MaxLatency {
					fast++
				}
			default:
				qaf++
			}
			if rng.Float64() < 0.1 {
				d.Escalated = true
				esc++
			}
			lat += float64(d.LatencyMS)
			cost += d.CostUSD
			imgs += float64(d.Images)
			w.batch.AddDecision(d)
			if rng.Float64() < 0.3 {
				n++
				sig := "thumbs_up"
				if rng.Float64() < 0.4 {
					sig = "thumbs_down"
					down++
				} else {
					up++
				}
				w.batch.AddSignal(&events.Signal{Header: events.Header{EventID: fmt.Sprintf("s%d", n), SchemaVersion: 1, TS: d.TS + 1000, Tenant: "acme", RequestID: d.RequestID}, Signal: sig, Value: 1})
			}
		}
		a := w.want[arm]
		a.Units++
		a.Requests += float64(reqs)
		r := float64(reqs)
		for m, x := range map[string]float64{"success_rate": succ, "qa_pass_rate": qap, "qa_fail_rate": qaf, "error_rate": errs,
			"escalation_rate": esc, "latency_ms": lat, "thumbs_up_rate": up, "thumbs_down_rate": down} {
			rm := a.Ratios[m]
			rm.Add(x, r)
			a.Ratios[m] = rm
		}
		rm := a.Ratios["cost_per_image"]
		rm.Add(cost, imgs)
		a.Ratios["cost_per_image"] = rm
		a.CUPED.Add(succ, pre)
		w.want[arm] = a
		cs := w.costSpeed[arm]
		cs.SuccessPerDollar.Add(succ, cost)
		cs.InBudget.Add(fast, r)
		w.costSpeed[arm] = cs
	}
	return w
}

func hdr(n int, ts time.Time) events.Header {
	return events.Header{EventID: fmt.Sprintf("e%d", n), SchemaVersion: 1, TS: ts.UnixMilli(), Tenant: "acme", RequestID: fmt.Sprintf("r%d", n)}
}

func TestReaderMatchesRawEvents(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	w := mustWorld(t, 1)
	ctx := context.Background()
	if err := ingest.NewWriter(db.Conn, db.Database).Write(ctx, w.batch); err != nil {
		t.Fatal(err)
	}
	for _, exact := range []bool{false, true} {
		r := chexp.NewReader(db.Conn, db.Database)
		r.Exact = exact
		got, err := r.Arms(ctx, w.spec)
		if err != nil {
			t.Fatalf("exact=%v: %v", exact, err)
		}
		if len(got) != 2 {
			t.Fatalf("exact=%v: %d arms", exact, len(got))
		}
		for _, g := range got {
			want := w.want[g.Arm]
			if g.Units != want.Units || g.Requests != want.Requests {
				t.Errorf("exact=%v arm %s: units %v requests %v, want %v %v", exact, g.Arm, g.Units, g.Requests, want.Units, want.Requests)
			}
			for m, wm := range want.Ratios {
				gm := g.Ratios[m]
				if !closeTo(gm.SumX, wm.SumX) || !closeTo(gm.SumXX, wm.SumXX) || !closeTo(gm.SumXY, wm.SumXY) || !closeTo(gm.SumY, wm.SumY) || !closeTo(gm.SumYY, wm.SumYY) {
					t.Errorf("exact=%v arm %s %s: got %+v, want %+v", exact, g.Arm, m, gm, wm)
				}
			}
			if !closeTo(g.CUPED.SumX, want.CUPED.SumX) || !closeTo(g.CUPED.SumXY, want.CUPED.SumXY) || !closeTo(g.CUPED.SumY, want.CUPED.SumY) {
				t.Errorf("exact=%v arm %s CUPED: got %+v, want %+v", exact, g.Arm, g.CUPED, want.CUPED)
			}
			if p50 := g.Latency[0.5]; p50 < 2500 || p50 > 3500 {
				t.Errorf("exact=%v arm %s latency p50 = %v, want about 3000", exact, g.Arm, p50)
			}
		}
	}
	// the report over ClickHouse aggregates equals the one over Go's
	r := chexp.NewReader(db.Conn, db.Database)
	got, _ := r.Arms(ctx, w.spec)
	rep := experiments.Analyze(w.spec, got, 0.05)
	ref := experiments.Analyze(w.spec, []experiments.ArmData{w.want["control"], w.want["treatment"]}, 0.05)
	if !closeTo(*rep.Treatments[0].PValue, *ref.Treatments[0].PValue) || !closeTo(rep.SRMPValue, ref.SRMPValue) {
		t.Errorf("report p %v srm %v, want %v %v", *rep.Treatments[0].PValue, rep.SRMPValue, *ref.Treatments[0].PValue, ref.SRMPValue)
	}
}

// TestCostSpeedMatchesRawEvents: the per-unit sums of successes, cost,
// requests and successes within the latency budget (a request's own, else
// its tier's) equal those computed from the events.
func TestCostSpeedMatchesRawEvents(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	w := mustWorld(t, 1)
	ctx := context.Background()
	if err := ingest.NewWriter(db.Conn, db.Database).Write(ctx, w.batch); err != nil {
		t.Fatal(err)
	}
	got, err := chexp.NewReader(db.Conn, db.Database).CostSpeed(ctx, w.spec, experiments.DefaultLatencyBudgets())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d arms, want 2", len(got))
	}
	same := func(g, w experiments.RatioMoments) bool {
		return g.N == w.N && closeTo(g.SumX, w.SumX) && closeTo(g.SumXX, w.SumXX) && closeTo(g.SumY, w.SumY) && closeTo(g.SumYY, w.SumYY) && closeTo(g.SumXY, w.SumXY)
	}
	for _, g := range got {
		want := w.costSpeed[g.Arm]
		if !same(g.SuccessPerDollar, want.SuccessPerDollar) || !same(g.InBudget, want.InBudget) {
			t.Errorf("arm %s: got %+v, want %+v", g.Arm, g, want)
		}
		if g.InBudget.SumX >= want.SuccessPerDollar.SumX {
			t.Errorf("arm %s: every success within budget (%v of %v): the 3 s budgets cut none", g.Arm, g.InBudget.SumX, want.SuccessPerDollar.SumX)
		}
	}

	// A spec's own tier budgets replace the defaults: 2 s for the standard
	// tier cuts successes (latencies are 1-5 s), ten minutes cuts none more
	// than the 30 s default did.
	budgets := func(ms int64) map[string]float64 {
		s := w.spec
		s.LatencyBudgetsMS = &experiments.LatencyBudgetsMS{Standard: ms}
		got, err := chexp.NewReader(db.Conn, db.Database).CostSpeed(ctx, s, s.LatencyBudgets())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, g := range got {
			out[g.Arm] = g.InBudget.SumX
		}
		return out
	}
	tight, loose := budgets(2000), budgets(600000)
	for arm, want := range w.costSpeed {
		if loose[arm] != want.InBudget.SumX {
			t.Errorf("arm %s: %v successes within a 10 min standard budget, want %v as with 30 s", arm, loose[arm], want.InBudget.SumX)
		}
		if tight[arm] >= want.InBudget.SumX {
			t.Errorf("arm %s: %v successes within a 2 s standard budget, want fewer than %v", arm, tight[arm], want.InBudget.SumX)
		}
	}
}

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// Looks recorded at a phase fold into a running result: the smallest
// p-value and the intersection of the intervals; another phase or alpha is
// kept apart.
func TestLooksAreRunning(t *testing.T) {
	db := ingesttest.ClickHouse(t)
	r := chexp.NewReader(db.Conn, db.Database)
	ctx := context.Background()
	s := experiments.Spec{ID: "exp-looks", Phase: 1}
	k := experiments.LookKey{Arm: "treatment", Metric: "success_rate"}
	prior, err := r.PriorLooks(ctx, s, 0.05)
	if err != nil || len(prior) != 0 {
		t.Fatalf("PriorLooks before any look = %v, %v; want none", prior, err)
	}
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i, l := range []experiments.Look{{PValue: 0.3, CILow: -0.02, CIHigh: 0.06}, {PValue: 0.02, CILow: 0.004, CIHigh: 0.05}, {PValue: 0.4, CILow: -0.01, CIHigh: 0.045}} {
		if err := r.RecordLook(ctx, s, 0.05, map[experiments.LookKey]experiments.Look{k: l}, at.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	other := s
	other.Phase = 2
	if err := r.RecordLook(ctx, other, 0.05, map[experiments.LookKey]experiments.Look{k: {PValue: 0.0001, CILow: 0.1, CIHigh: 0.2}}, at); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordLook(ctx, s, 0.01, map[experiments.LookKey]experiments.Look{k: {PValue: 0.0001, CILow: 0.1, CIHigh: 0.2}}, at); err != nil {
		t.Fatal(err)
	}
	prior, err = r.PriorLooks(ctx, s, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := prior[k], (experiments.Look{PValue: 0.02, CILow: 0.004, CIHigh: 0.045}); len(prior) != 1 || got != want {
		t.Errorf("PriorLooks = %v, want {%v: %+v}", prior, k, want)
	}
}
