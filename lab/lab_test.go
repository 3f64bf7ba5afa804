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
