package router_test

import (
	"strings"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/router"
)

func TestDiff(t *testing.T) {
	a, err := datasets.Policy("rules")
	if err != nil {
		t.Fatal(err)
	}
	b, err := datasets.Policy("rules")
	if err != nil {
		t.Fatal(err)
	}
	if d := router.Diff(a, b); len(d.Changes) != 0 {
		t.Errorf("Diff(rules, rules) = %v, want none", d.Changes)
	}
	b.Epsilon = 0.5
	b.Rules = b.Rules[1:]
	b.Rules = append(b.Rules, router.Rule{Name: "all-premium", Model: "sim-premium"})
	b.Version = "rules-2"
	got := strings.Join(router.Diff(a, b).Changes, "\n")
	want := strings.Join([]string{
		"epsilon: 0 -> 0.5",
		"rule added: all-premium",
		"rule removed: " + a.Rules[0].Name,
		"version: " + a.Version + " -> rules-2",
	}, "\n")
	if got != want {
		t.Errorf("Diff changes:\n%s\nwant:\n%s", got, want)
	}
}

func TestRouteMoves(t *testing.T) {
	a, err := datasets.Policy("rules")
	if err != nil {
		t.Fatal(err)
	}
	b := *a
	b.Rules = append([]router.Rule{{Name: "all-premium", Model: "sim-premium"}}, a.Rules...)
	b.Version, b.Checksum = "", ""
	if err := b.Seal(); err != nil {
		t.Fatal(err)
	}
	items, err := datasets.Generate(1, 200)
	if err != nil {
		t.Fatal(err)
	}
	reqs := make([]router.Request, len(items))
	for i := range items {
		reqs[i] = items[i].Request
	}
	differ, moves := router.RouteMoves(reqs, a, &b)
	total, toPremium := 0, 0
	for k, n := range moves {
		total += n
		if strings.HasSuffix(k, " -> sim-premium") {
			toPremium += n
		}
	}
	if differ == 0 || total != differ || toPremium != differ {
		t.Errorf("RouteMoves = %d, %v; want every moved request moved to sim-premium", differ, moves)
	}
	if same, _ := router.RouteMoves(reqs, a, a); same != 0 {
		t.Errorf("RouteMoves(a, a) = %d, want 0", same)
	}
}
