package lab_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/jobs/memsource"
	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/lab/labtest"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

func mustLab(t testing.TB, policy string) (*lab.Lab, []datasets.WorkItem) {
	t.Helper()
	p, err := datasets.Policy(policy)
	if err != nil {
		t.Fatal(err)
	}
	cat := router.Catalog{Models: p.Models}
	l, err := lab.New(lab.Config{Catalog: cat, World: sim.NewWorld(cat, 1)}, p)
	if err != nil {
		t.Fatal(err)
	}
	items, err := datasets.Generate(7, 400)
	if err != nil {
		t.Fatal(err)
	}
	return l, items
}

func BenchmarkLabServe(b *testing.B) {
	l, items := mustLab(b, "rules")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Serve(context.Background(), items[i%len(items)].Request)
		i++
	}
}

// A run keeps every Result: they must not hold the images (a full-size
// scenario once grew past 22 GB that way).
func TestResultsHoldNoImages(t *testing.T) {
	l, items := mustLab(t, "rules")
	served := 0
	for _, it := range items[:12] {
		res := l.Serve(context.Background(), it.Request)
		if !res.Served() {
			continue
		}
		served++
		if len(res.Outcome.Images) != 0 {
			t.Fatalf("result of %s holds %d images", it.Request.ID, len(res.Outcome.Images))
		}
	}
	if served == 0 {
		t.Fatal("nothing served")
	}
}

// TestLabFeedbackLabels: the simulated users' signals go through the
// gateway into the event sink, and the jobs' labels read from those events
// (memsource, jobs.Labels) give each labelled decision the hidden success
// of the routed model's own image: under the default labels when QA passed
// it too, under the users' verdicts alone (RequireQA false) exactly. (Few
// requests: each renders and QA-checks an image, a hundred times slower
// under -race.)
func TestLabFeedbackLabels(t *testing.T) {
	labtest.Heavy(t)
	for _, tt := range []struct {
		rate float64
		n    int
	}{{0, 20}, {1, 80}} {
		rate := tt.rate
		t.Run(fmt.Sprintf("feedback %.0f", rate), func(t *testing.T) {
			p, err := datasets.Policy("explore")
			if err != nil {
				t.Fatal(err)
			}
			cat := router.Catalog{Models: p.Models}
			verdicts := jobs.DefaultLabels()
			verdicts.RequireQA = false
			withQA, byUsers := memsource.New(jobs.DefaultLabels()), memsource.New(verdicts)
			l, err := lab.New(lab.Config{Catalog: cat, World: sim.NewWorld(cat, 1), Events: both{withQA, byUsers}, Feedback: rate}, p)
			if err != nil {
				t.Fatal(err)
			}
			items, err := datasets.Generate(7, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			from := l.Now()
			wantQA, wantUsers := map[string]float64{}, map[string]float64{}
			signals := 0
			for _, it := range items {
				res := l.Serve(context.Background(), it.Request)
				if res.Signal != nil {
					signals++
					if wantKind := map[bool]string{true: "thumbs_up", false: "thumbs_down"}[res.Quality >= sim.SuccessQuality]; res.Signal.Signal != wantKind {
						t.Errorf("%s: quality %.3f, signal %q, want %q", it.Request.ID, res.Quality, res.Signal.Signal, wantKind)
					}
				}
				d := res.Decision
				if !res.Served() || len(d.Attempts) == 0 || d.Attempts[0].Model != d.Model {
					continue // the routed model's image was not served: a failure
				}
				good := rate == 0 || res.Quality >= sim.SuccessQuality
				if good && res.Outcome.QAPass {
					wantQA[it.Request.ID] = 1
				}
				if good {
					wantUsers[it.Request.ID] = 1
				}
			}
			if wantSignals := rate > 0; (signals > 0) != wantSignals {
				t.Fatalf("feedback %.0f: %d signals", rate, signals)
			}
			w := jobs.Window{From: from, To: l.Now().Add(time.Millisecond)}
			for _, c := range []struct {
				name string
				src  *memsource.Source
				want map[string]float64
			}{{"default labels", withQA, wantQA}, {"users' verdicts", byUsers, wantUsers}} {
				logged, err := c.src.Logged(context.Background(), w, p.Version, 0, false)
				if err != nil {
					t.Fatal(err)
				}
				if len(logged) < tt.n/2 {
					t.Fatalf("%s: %d labelled decisions of %d requests", c.name, len(logged), len(items))
				}
				for _, lg := range logged {
					if lg.Y != c.want[lg.RequestID] {
						t.Errorf("%s: %s: label %.0f, want %.0f", c.name, lg.RequestID, lg.Y, c.want[lg.RequestID])
					}
				}
			}
		})
	}
}

// both passes every event to two sinks.
type both [2]*memsource.Source

func (b both) Enqueue(topic, key string, ev any) {
	b[0].Enqueue(topic, key, ev)
	b[1].Enqueue(topic, key, ev)
}
