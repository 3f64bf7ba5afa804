package memsource_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/chsource"
	"github.com/routelab/routelab/jobs/jobstest"
	"github.com/routelab/routelab/jobs/memsource"
	"github.com/routelab/routelab/router"
)

func TestMain(m *testing.M) { os.Exit(ingesttest.Main(m)) }

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func header(id string, ts time.Time) events.Header {
	return events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: ts.UnixMilli(), Tenant: "acme", RequestID: id}
}

// both writes a batch into a test database and into an in-memory source
// and returns the two sources.
func both(t *testing.T, b *ingest.Batch, ev func(s *memsource.Source)) (*chsource.Store, *memsource.Source) {
	t.Helper()
	db := ingesttest.ClickHouse(t)
	if err := ingest.NewWriter(db.Conn, db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	m := memsource.New(jobs.DefaultLabels())
	ev(m)
	return &chsource.Store{Conn: db.Conn, DB: db.Database, Labels: jobs.DefaultLabels()}, m
}

// TestLabels checks the success definition on one hand-made request per
// clause, joined in ClickHouse and evaluated in memory.
func TestLabels(t *testing.T) {
	var decs []events.Decision
	var qas []events.QAResult
	var sigs []events.Signal
	var revs []events.Review
	tests := []struct {
		id   string
		want float64
	}{
		{"ok", 1}, {"qa-fail", 0}, {"thumbs-down", 0}, {"regenerated", 0}, {"thumbs-up", 1},
		{"low-review", 0}, {"good-review", 1}, {"qa-results-last-fail", 0}, {"qa-results-retry-pass", 1}, {"error", 0},
	}
	for _, tt := range tests {
		if tt.id != "error" {
			decs = append(decs, events.Decision{Header: header(tt.id, t0), Mode: "generate", Tier: "standard", Model: "m", PolicyVersion: "v1", Propensity: 1, Status: "ok", QAPass: tt.id != "qa-fail", Images: 1})
		}
	}
	decs = append(decs, events.Decision{Header: header("error", t0), Mode: "generate", Model: "", PolicyVersion: "v1", Propensity: 1, Status: "error"})
	sig := func(id, s string) {
		e := events.Signal{Header: header(id+"-"+s, t0.Add(time.Minute)), Signal: s}
		e.RequestID = id
		sigs = append(sigs, e)
	}
	sig("thumbs-down", "thumbs_down")
	sig("regenerated", "regenerate")
	sig("thumbs-up", "thumbs_up")
	rev := func(id string, score float64) {
		revs = append(revs, events.Review{Header: header(id, t0.Add(time.Hour)), Kind: "score", Reviewer: "r1", Scores: []events.Score{{Name: "overall", Value: score}, {Name: "text", Value: 5}}})
	}
	rev("low-review", 2)
	rev("good-review", 4)
	qa := func(id string, attempt int, pass bool) {
		q := events.QAResult{Header: header(fmt.Sprintf("%s-qa%d", id, attempt), t0), Model: "m", Attempt: attempt, Pass: pass}
		q.RequestID = id
		qas = append(qas, q)
	}
	qa("qa-results-last-fail", 0, true)
	qa("qa-results-last-fail", 1, false)
	qa("qa-results-retry-pass", 0, false)
	qa("qa-results-retry-pass", 1, true)
	b := ingest.NewBatch()
	for i := range decs {
		b.AddDecision(&decs[i])
	}
	for i := range qas {
		b.AddQA(&qas[i])
	}
	for i := range sigs {
		b.AddSignal(&sigs[i])
	}
	for i := range revs {
		b.AddReview(&revs[i])
	}
	ch, mem := both(t, b, func(s *memsource.Source) {
		for i := range decs {
			s.AddDecision(&decs[i])
		}
		for i := range qas {
			s.AddQA(&qas[i])
		}
		for i := range sigs {
			s.AddSignal(&sigs[i])
		}
		for i := range revs {
			s.AddReview(&revs[i])
		}
	})
	w := jobs.Window{From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}
	for name, src := range map[string]jobs.LoggedSource{"clickhouse": ch, "memory": mem} {
		logged, err := src.Logged(context.Background(), w, "v1", 0, false)
		if err != nil {
			t.Fatalf("%s: Logged: %v", name, err)
		}
		got := map[string]float64{}
		for _, l := range logged {
			got[l.RequestID] = l.Y
		}
		for _, tt := range tests {
			if g, ok := got[tt.id]; !ok || g != tt.want {
				t.Errorf("%s: label(%s) = %v (present %v), want %v", name, tt.id, g, ok, tt.want)
			}
		}
	}
}

// floats compares sums ClickHouse and Go add up in different orders.
var floats = cmpopts.EquateApprox(1e-9, 1e-9)

// TestSourcesAgree: the same simulated traffic, written into ClickHouse
// and fed to the in-memory source, reads the same through every method the
// jobs use (sampling aside: no limit is hit here).
func TestSourcesAgree(t *testing.T) {
	live := jobstest.TrainedPolicy(t)
	ev, end := jobstest.Simulate(t, live, 11, 3000, t0, false)
	shift, end2 := jobstest.Simulate(t, live, 12, 500, end, true)
	ev.Decisions = append(ev.Decisions, shift.Decisions...)
	ev.QA = append(ev.QA, shift.QA...)
	ev.Signals = append(ev.Signals, shift.Signals...)
	ch, mem := both(t, ev.Batch(), ev.Into)
	ctx := context.Background()
	w := jobs.Window{From: t0.Add(30 * time.Second), To: end2}

	bins := func(s jobs.CalibrationSource) []jobs.CalBin {
		b, err := s.CalibrationBins(ctx, w, live.Version)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if d := cmp.Diff(bins(ch), bins(mem), floats); d != "" {
		t.Errorf("CalibrationBins (-clickhouse +memory):\n%s", d)
	}
	rows := func(s jobs.CalibrationSource) []jobs.Row {
		r, err := s.Rows(ctx, w, live.Version, 100000)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(r, func(i, j int) bool { return r[i].ID < r[j].ID })
		return r
	}
	chRows := rows(ch)
	if len(chRows) < 2500 {
		t.Fatalf("%d labelled rows, want most of 3,500", len(chRows))
	}
	if d := cmp.Diff(chRows, rows(mem), floats, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("Rows (-clickhouse +memory):\n%s", d)
	}
	for _, hold := range []bool{false, true} {
		logged := func(s jobs.LoggedSource) []jobs.Logged {
			l, err := s.Logged(ctx, w, live.Version, 0, hold)
			if err != nil {
				t.Fatal(err)
			}
			sort.SliceStable(l, func(i, j int) bool { return l[i].RequestID < l[j].RequestID })
			return l
		}
		if d := cmp.Diff(logged(ch), logged(mem), floats, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("Logged(holdout only %v) (-clickhouse +memory):\n%s", hold, d)
		}
	}
	for _, v := range []string{"", live.Version, "other"} {
		a, _ := ch.Count(ctx, w, v)
		b, _ := mem.Count(ctx, w, v)
		if a != b {
			t.Errorf("Count(%q) = %d in ClickHouse, %d in memory", v, a, b)
		}
	}
	rc := func(s jobs.DriftSource) map[string]float64 {
		r, err := s.RouteCounts(ctx, live.Version, end)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if d := cmp.Diff(rc(ch), rc(mem)); d != "" {
		t.Errorf("RouteCounts (-clickhouse +memory):\n%s", d)
	}
	cut := func(s jobs.DriftSource) time.Time {
		c, err := s.EventCut(ctx, w, 0.25)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// ClickHouse's quantile is exact below 8,192 rows, but in floats
	if a, b := cut(ch), cut(mem); a.Sub(b).Abs() > time.Millisecond {
		t.Errorf("EventCut = %s in ClickHouse, %s in memory", a, b)
	}
	spec := jobs.ProfileSpec{ResetDepth: 7}
	edges := router.ReferenceEdges()
	for _, f := range []string{jobs.FeaturePromptWords, jobs.FeaturePromptLen, jobs.FeatureRefCount, jobs.FeatureEditDepth, jobs.FeatureAspect, jobs.FeatureLatencyMS, jobs.FeatureCostUSD} {
		e := edges[f]
		if e == nil {
			e = []float64{10, 100, 1000, 10000}
		}
		spec.Num, spec.Edges = append(spec.Num, f), append(spec.Edges, e[1:])
	}
	spec.Cat = []string{jobs.FeatureMode, jobs.FeatureTier, jobs.FeatureModel, jobs.FeatureTextHeavy, jobs.FeaturePreserve, jobs.FeatureRule, jobs.FeatureKeyword, jobs.FeatureRefCount}
	for _, at := range []time.Time{{}, cut(ch)} {
		prof := func(s jobs.DriftSource) [2]jobs.ProfileCounts {
			e, l, err := s.Profile(ctx, w, spec, at)
			if err != nil {
				t.Fatal(err)
			}
			return [2]jobs.ProfileCounts{e, l}
		}
		if d := cmp.Diff(prof(ch), prof(mem), cmpopts.EquateEmpty()); d != "" {
			t.Errorf("Profile(cut %s) (-clickhouse +memory):\n%s", at, d)
		}
	}
	rates := func(s jobs.DriftSource) []jobs.RateBucket {
		r, err := s.Rates(ctx, w, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	chRates := rates(ch)
	var td float64
	for _, r := range chRates {
		td += r.ThumbsDown
	}
	if td == 0 {
		t.Fatal("no thumbs-down in the rates: the comparison would not cover signals")
	}
	if d := cmp.Diff(chRates, rates(mem)); d != "" {
		t.Errorf("Rates (-clickhouse +memory):\n%s", d)
	}
}

// TestPipelineInMemory: the jobs pipeline on events held in memory, as the
// lab runs it: recalibration, the OPE gate, drift and the push, with the
// audit events in the source.
func TestPipelineInMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a policy and simulates 20k requests")
	}
	live := jobstest.TrainedPolicy(t)
	ev, end := jobstest.Simulate(t, live, 21, 20000, t0, false)
	// fed the way the gateway emits events, through its sink interface
	src := memsource.New(jobs.DefaultLabels())
	var sink gateway.Sink = src
	for i := range ev.Decisions {
		sink.Enqueue(events.TopicDecisions, ev.Decisions[i].RequestID, &ev.Decisions[i])
	}
	for i := range ev.QA {
		sink.Enqueue(events.TopicQA, ev.QA[i].RequestID, &ev.QA[i])
	}
	for i := range ev.Signals {
		sink.Enqueue(events.TopicSignals, ev.Signals[i].RequestID, ev.Signals[i])
	}
	var pushed []string
	rep, err := jobs.RunPipeline(context.Background(), src, live, jobs.Window{From: t0, To: end}, nil, pushFunc(func(p *router.Policy) string {
		pushed = append(pushed, p.Version)
		return p.Version
	}), jobs.PipelineOptions{Push: true, SkipCanary: true, DriftBlocks: true, Audit: src.Audit}, func(f string, a ...any) { t.Logf(f, a...) })
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, s := range rep.Steps {
		steps = append(steps, s.Name+":"+s.Status)
	}
	if got := strings.Join(steps, " "); got != "recalibrate:ok ope:ok drift:ok canary:skipped push:ok" || !rep.Pushed || len(pushed) != 1 {
		t.Fatalf("pipeline = %s stopped at %q (%s), pushed %v", got, rep.Stopped, rep.Reason, pushed)
	}
	if n := len(src.Audits()); n != 5 {
		t.Errorf("%d audit events, want one per step (5)", n)
	}
	for _, s := range rep.Steps {
		if s.Name == "recalibrate" {
			r := s.Report.(jobs.CandidateReport)
			if math.Abs(r.Rows-20000) > 2000 {
				t.Errorf("recalibrate read %.0f labelled decisions, want about 20000", r.Rows)
			}
		}
	}
}

type pushFunc func(*router.Policy) string

func (f pushFunc) Push(_ context.Context, p *router.Policy) (string, error) { return f(p), nil }

// TestShadowMirrorsAreNotLiveTraffic: as chsource reads only shadow = 0
// rows, the in-memory source keeps no shadow mirror.
func TestShadowMirrorsAreNotLiveTraffic(t *testing.T) {
	s := memsource.New(jobs.DefaultLabels())
	ts := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	live := events.Decision{Header: events.Header{EventID: "e1", RequestID: "r1", TS: ts.UnixMilli()}, PolicyVersion: "p", Status: "ok", QAPass: true}
	mirror := live
	mirror.EventID, mirror.RequestID, mirror.LiveRequestID, mirror.Shadow = "e2", "r2", "r1", true
	s.AddDecision(&live)
	s.AddDecision(&mirror)
	s.AddQA(&events.QAResult{Header: events.Header{RequestID: "r1"}, Shadow: true, Pass: false})
	n, err := s.Count(context.Background(), jobs.Window{From: ts, To: ts.Add(time.Second)}, "")
	if err != nil || n != 1 {
		t.Errorf("Count = %d, %v; want the live decision alone", n, err)
	}
}
