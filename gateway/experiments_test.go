package gateway_test

import (
	"context"
	"fmt"
	"image/color"
	"testing"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/gateway"
	"github.com/routelab/routelab/gateway/gatewaytest"
	"github.com/routelab/routelab/providers"
)

// TestBanditPropensityInDecision: a request of a bandit experiment is
// served by its arm's model, and its decision event carries the weight in
// force for that arm as the propensity, which the bandit's analysis divides
// by.
func TestBanditPropensityInDecision(t *testing.T) {
	s := experiments.Spec{
		ID: "bandit-models", Name: "bandit", Owner: "t", Unit: experiments.UnitRequest, PrimaryMetric: "success_rate",
		Kind: experiments.KindBandit, Bandit: &experiments.Bandit{Weights: map[string][]float64{"": {0.2, 0.8}}},
		Arms: []experiments.Arm{
			{Name: "fast", Weight: 1, Overrides: experiments.Overrides{Model: "fast"}},
			{Name: "strong", Weight: 1, Overrides: experiments.Overrides{Model: "strong"}},
		},
	}
	a := runningAssigner(t, s)
	sink := gatewaytest.NewProducer(256)
	g := gateway.New(gateway.Config{SampleRate: -1}, gateway.Deps{
		Policy: &gatewaytest.Router{Model: "fast", Version: "p1"},
		Providers: map[string]providers.Provider{
			"fast":   &gatewaytest.Provider{Model: "fast", Color: color.NRGBA{200, 0, 0, 255}},
			"strong": &gatewaytest.Provider{Model: "strong", Color: color.NRGBA{0, 0, 200, 255}},
		},
		QA:       &gatewaytest.Inspector{},
		Events:   sink,
		Assigner: gateway.NewExperimentAssigner(func() *experiments.Assigner { return a }, nil),
	})
	want := map[string]float64{"fast": 0.2, "strong": 0.8}
	served := map[string]int{}
	for i := range 40 {
		o, err := g.Serve(context.Background(), request(fmt.Sprintf("req-%d", i), "acme"))
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		ev, ok := sink.Next(context.Background(), events.TopicDecisions)
		if !ok {
			t.Fatal("no decision event")
		}
		d := ev.Value.(*events.Decision)
		if len(d.Arms) != 1 {
			t.Fatalf("decision arms = %+v, want one", d.Arms)
		}
		arm := d.Arms[0]
		if arm.Propensity != want[arm.Arm] || o.Model != arm.Arm {
			t.Errorf("request %s: arm %s propensity %v served by %s, want propensity %v served by %s", d.RequestID, arm.Arm, arm.Propensity, o.Model, want[arm.Arm], arm.Arm)
		}
		served[arm.Arm]++
	}
	if served["fast"] == 0 || served["strong"] <= served["fast"] {
		t.Errorf("served %v, want both arms, strong (0.8) more than fast (0.2)", served)
	}
}

// runningAssigner validates and allocates s, starts it and returns an
// assigner holding it alone.
func runningAssigner(t *testing.T, s experiments.Spec) *experiments.Assigner {
	t.Helper()
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := experiments.Allocate(&s, nil); err != nil {
		t.Fatal(err)
	}
	s.Status = experiments.StatusRunning
	return experiments.NewAssigner([]experiments.Spec{s})
}
