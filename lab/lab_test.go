package lab_test

import (
	"context"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/lab"
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
	for _, it := range items[:60] {
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
