// Package jobstest gives tests of the offline jobs a simulated deployment:
// a policy trained on an exploration log, and requests served under it in
// the simulated world, written into a test's ClickHouse database the way
// ingest writes them.
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
			s := w.Serve(&it.Request, it.Task, &d)
			if d.Model != "" && s.FirstLabel {
				req := it.Request
				req.EditDepth = d.EditDepth
				ex = append(ex, router.Example{Req: req, Model: d.Model, Propensity: d.Propensity, Success: s.FirstSuccess})
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

// Serve writes n requests of workload seed, routed by p and served by the
// simulated world, into db, 100 ms apart from start, with a QA result per
// returned image and a thumbs-down on some failures; editsOnly keeps only
// edit requests (a traffic shift). It returns the time after the last.
func Serve(t testing.TB, db *ingesttest.DB, p *router.Policy, seed uint64, n int, start time.Time, editsOnly bool) time.Time {
	t.Helper()
	cat := datasets.MustCatalog()
	items, err := datasets.Generate(seed, n*4)
	if err != nil {
		t.Fatal(err)
	}
	w := sim.NewWorld(cat, seed)
	b := ingest.NewBatch()
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
		s := w.Serve(&it.Request, it.Task, &d)
		e := s.Event(&it.Request, &d, ts.UnixMilli())
		b.AddDecision(&e)
		for i, a := range s.Attempts {
			if a.Status != "ok" {
				continue
			}
			q := events.QAResult{Header: header(fmt.Sprintf("%s-qa%d", e.RequestID, i), ts), Model: a.Model, Attempt: i, Pass: e.QAPass}
			q.RequestID = e.RequestID
			b.AddQA(&q)
		}
		if k%29 == 0 && !e.QAPass {
			sg := events.Signal{Header: header(e.RequestID+"-td", ts.Add(time.Second)), Signal: "thumbs_down"}
			sg.RequestID = e.RequestID
			b.AddSignal(&sg)
		}
		ts = ts.Add(100 * time.Millisecond)
	}
	if err := ingest.NewWriter(db.Conn, db.Database).Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return ts
}
