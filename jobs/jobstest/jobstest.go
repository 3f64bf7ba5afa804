// Package jobstest gives tests of the offline jobs a simulated deployment:
// a policy trained on an exploration log, and requests served under it in
// the simulated world, written into a test's ClickHouse database the way
// ingest writes them or into an in-memory source.
package jobstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/ingest"
	"github.com/routelab/routelab/ingest/ingesttest"
	"github.com/routelab/routelab/jobs/memsource"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

var (
	trainOnce sync.Once
	trained   *router.Policy
	trainErr  error
)

// TrainedPolicy trains one policy per test binary on 20k exploration events
// of the simulated world (a few seconds).
func TrainedPolicy(t testing.TB) *router.Policy {
	t.Helper()
	trainOnce.Do(func() {
		cat := datasets.MustCatalog()
		explore, err := datasets.Policy("explore")
		if err != nil {
			trainErr = err
			return
		}
		items, err := datasets.Generate(100, 20000)
		if err != nil {
			trainErr = err
			return
		}
		w := sim.NewWorld(cat, 100)
		var ex []router.Example
		for _, it := range items {
			d := router.Decide(it.Request, explore, nil)
			s := w.Judge(&it.Request, it.Task, &d)
			if d.Model != "" && s.Label {
				req := it.Request
				req.EditDepth = d.EditDepth
				ex = append(ex, router.Example{Req: req, Model: d.Model, Propensity: d.Propensity, Success: s.Success})
			}
		}
		trained, trainErr = router.Train(ex, router.TrainConfig{Name: "test", Models: cat.Models, DefaultModel: cat.DefaultModel, Rules: explore.Rules, Epsilon: 0.1})
	})
	if trainErr != nil {
		t.Fatalf("train: %v", trainErr)
	}
	return trained
}

func header(id string, ts time.Time) events.Header {
	return events.Header{EventID: id, SchemaVersion: events.SchemaVersion, TS: ts.UnixMilli(), Tenant: "acme", RequestID: id}
}

// Events are what serving simulated requests logged, in the order ingest
// and the in-memory source take them.
type Events struct {
	Decisions []events.Decision
	QA        []events.QAResult
	Signals   []events.Signal
}

// Batch is the events as one ingest batch.
func (e *Events) Batch() *ingest.Batch {
	b := ingest.NewBatch()
	for i := range e.Decisions {
		b.AddDecision(&e.Decisions[i])
	}
	for i := range e.QA {
		b.AddQA(&e.QA[i])
	}
	for i := range e.Signals {
		b.AddSignal(&e.Signals[i])
	}
	return b
}

// Into adds the events to an in-memory source.
func (e *Events) Into(s *memsource.Source) {
	for i := range e.Decisions {
		s.AddDecision(&e.Decisions[i])
	}
	for i := range e.QA {
		s.AddQA(&e.QA[i])
	}
	for i := range e.Signals {
		s.AddSignal(&e.Signals[i])
	}
}

// Simulate serves n requests of workload seed, routed by p and served by
// the simulated world, 100 ms apart from start, with a QA result per
// returned image and a thumbs-down on some failures; editsOnly keeps only
// edit requests (a traffic shift). It returns the events and the time
// after the last.
func Simulate(t testing.TB, p *router.Policy, seed uint64, n int, start time.Time, editsOnly bool) (Events, time.Time) {
	t.Helper()
	cat := datasets.MustCatalog()
	items, err := datasets.Generate(seed, n*4)
	if err != nil {
		t.Fatal(err)
	}
	w := sim.NewWorld(cat, seed)
	var ev Events
	ts := start
	k := 0
	for _, it := range items {
		if k == n {
			break
		}
		if editsOnly && it.Request.Mode != router.ModeEdit {
			continue
		}
		k++
		it.Request.ID = fmt.Sprintf("s%d-%s", seed, it.Request.ID)
		d := router.Decide(it.Request, p, nil)
		s := w.Judge(&it.Request, it.Task, &d)
		e := s.Event(&it.Request, &d, ts.UnixMilli())
		ev.Decisions = append(ev.Decisions, e)
		if a := s.Attempt; a.Status == "ok" {
			q := events.QAResult{Header: header(e.RequestID+"-qa0", ts), Model: a.Model, Attempt: 0, Pass: e.QAPass}
			q.RequestID = e.RequestID
			ev.QA = append(ev.QA, q)
		}
		if k%29 == 0 && !e.QAPass {
			sg := events.Signal{Header: header(e.RequestID+"-td", ts.Add(time.Second)), Signal: "thumbs_down"}
			sg.RequestID = e.RequestID
			ev.Signals = append(ev.Signals, sg)
		}
		ts = ts.Add(100 * time.Millisecond)
	}
	return ev, ts
}

// Serve writes Simulate's events into db the way ingest writes them and
// returns the time after the last request.
func Serve(t testing.TB, db *ingesttest.DB, p *router.Policy, seed uint64, n int, start time.Time, editsOnly bool) time.Time {
	t.Helper()
	ev, end := Simulate(t, p, seed, n, start, editsOnly)
	if err := ingest.NewWriter(db.Conn, db.Database).Write(context.Background(), ev.Batch()); err != nil {
		t.Fatal(err)
	}
	return end
}

// Generate inserts n synthetic decisions of policyVersion into db, made by
// ClickHouse itself (INSERT ... SELECT FROM numbers), 10 ms apart from
// start, for the performance runs: six models with candidate arrays and
// calibrated P, a label correlated with the routed model's P, one QA result
// per decision, thumbs-down signals on 5% and a human review on 1%.
// Models are the simulated catalog's, so a policy trained on it applies.
func Generate(ctx context.Context, db *ingesttest.DB, policyVersion string, n int, start time.Time) error {
	// chunks of a million rows keep each INSERT well inside the client's
	// read timeout on a loaded machine
	const chunk = 1000000
	for off := 0; off < n; off += chunk {
		if err := generate(ctx, db, policyVersion, off, min(chunk, n-off), start); err != nil {
			return err
		}
	}
	return nil
}

func generate(ctx context.Context, db *ingesttest.DB, policyVersion string, off, n int, start time.Time) error {
	t0 := start.UnixMilli()
	nums := fmt.Sprintf("(SELECT number + %d AS number FROM system.numbers LIMIT %d)", off, n)
	// h(k) is a uniform in [0,1) per row and stream k
	h := func(k int) string { return fmt.Sprintf("(cityHash64(number, %d) %% 1000000) / 1000000", k) }
	models := "['sim-lite','sim-fast','sim-premium','sim-editor','sim-typo','sim-hero']"
	q := fmt.Sprintf(`INSERT INTO %[1]s.decisions (event_id, schema_version, request_id, tenant, ts, ts_ms, unit, mode, tier, prompt,
  model, provider, policy_version, rule, propensity, explored, status, qa_pass, latency_ms, cost_usd, images,
  prompt_len, ref_count, edit_depth, aspect, text_heavy, keywords,
  candidate_models, candidate_p, candidate_cost_usd, candidate_eligible,
  attempt_models, attempt_providers, attempt_statuses, attempt_latency_ms, attempt_cost_usd)
SELECT concat('e', toString(number)) AS eid, 1, concat('r', toString(number)), 'acme', toDateTime(intDiv(ts_ms, 1000)), ts_ms,
  concat('u', toString(number %% 5000)), mode, tier, 'a poster that says hello',
  m, 'sim', %[2]s, '', prop, toUInt8(prop < 0.5), 'ok', toUInt8(%[3]s < cp[mi] * 0.95), latency, cost[mi], 1,
  toUInt32(20 + number %% 80), toUInt16(if(mode = 'edit', 1, 0)), toUInt16(if(mode = 'edit', number %% 7, 0)),
  [1., 1.5, 0.6667][number %% 3 + 1], toUInt8(number %% 11 = 0), if(number %% 5 = 0, ['text'], ['photo']),
  %[4]s, cp, cost, [1,1,1,1,1,1],
  [m], ['sim'], [if(%[3]s < cp[mi] * 0.95, 'ok', 'qa_fail')], [latency], [cost[mi]]
FROM (
  SELECT number, toUInt64(%[5]d + number * 10) AS ts_ms,
    if(number %% 10 < 2, 'edit', 'generate') AS mode, ['draft','standard','premium'][number %% 3 + 1] AS tier,
    toUInt8(cityHash64(number, 9) %% 6 + 1) AS mi, %[4]s[mi] AS m,
    [%[6]s, %[7]s, %[8]s, %[9]s, %[10]s, %[11]s] AS cp,
    [0.003, 0.02, 0.042, 0.04, 0.03, 0.06] AS cost,
    if(cityHash64(number, 8) %% 10 = 0, 0.1 / 6, 0.9 + 0.1 / 6) AS prop,
    toInt64(1000 + cityHash64(number, 7) %% 12000) AS latency
  FROM %[12]s
)`, db.Database, "'"+policyVersion+"'", h(3), models, t0,
		"0.5 + 0.5 * "+h(11), "0.5 + 0.5 * "+h(12), "0.5 + 0.5 * "+h(13), "0.5 + 0.5 * "+h(14), "0.5 + 0.5 * "+h(15), "0.5 + 0.5 * "+h(16), nums)
	if err := db.Conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("generate decisions: %w", err)
	}
	qa := fmt.Sprintf(`INSERT INTO %[1]s.qa_results (event_id, schema_version, request_id, tenant, ts, ts_ms, model, attempt, pass, score)
SELECT concat('q', toString(number)), 1, concat('r', toString(number)), 'acme', toDateTime(intDiv(%[2]d + number * 10, 1000)), toUInt64(%[2]d + number * 10),
  'sim', 0, toUInt8(%[3]s < 0.85), 0.5 FROM %[4]s`, db.Database, t0, h(3), nums)
	if err := db.Conn.Exec(ctx, qa); err != nil {
		return fmt.Errorf("generate qa results: %w", err)
	}
	sig := fmt.Sprintf(`INSERT INTO %[1]s.signals (event_id, schema_version, request_id, tenant, ts, ts_ms, signal, value)
SELECT concat('s', toString(number)), 1, concat('r', toString(number)), 'acme', toDateTime(intDiv(%[2]d + number * 10 + 5000, 1000)), toUInt64(%[2]d + number * 10 + 5000),
  'thumbs_down', 1 FROM %[3]s WHERE number %% 20 = 0`, db.Database, t0, nums)
	if err := db.Conn.Exec(ctx, sig); err != nil {
		return fmt.Errorf("generate signals: %w", err)
	}
	rev := fmt.Sprintf(`INSERT INTO %[1]s.reviews (event_id, schema_version, request_id, tenant, ts, ts_ms, kind, reviewer, score_names, score_values)
SELECT concat('v', toString(number)), 1, concat('r', toString(number)), 'acme', toDateTime(intDiv(%[2]d + number * 10 + 60000, 1000)), toUInt64(%[2]d + number * 10 + 60000),
  'score', 'r1', ['overall'], [toFloat64(1 + number %% 5)] FROM %[3]s WHERE number %% 100 = 7`, db.Database, t0, nums)
	if err := db.Conn.Exec(ctx, rev); err != nil {
		return fmt.Errorf("generate reviews: %w", err)
	}
	return nil
}
