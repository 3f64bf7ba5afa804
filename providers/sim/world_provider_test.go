package sim_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/sim"
)

// TestWorldThroughProviderAndQA drives the real World through the provider
// and QA: every success renders an image QA passes, and QA catches a share of
// the failures (the blurred and washed-out ones), not all of them — the rest
// is what human review and user signals are for.
func TestWorldThroughProviderAndQA(t *testing.T) {
	world := sim.NewWorld(datasets.MustCatalog(), 11)
	oracle := sim.WorldOracle(world)
	p := sim.New(oracle, sim.Options{})
	c := qa.New(qa.Thresholds{})
	var ok, okPass, bad, badCaught, errs int
	prompts := []string{"a watercolor fox", `a poster that says "SALE"`, "abstract gradient background", "portrait avatar of a cat"}
	for i := range 160 {
		req := providers.Request{RequestID: fmt.Sprintf("r%d", i), Model: "sim-lite", Mode: "generate", Prompt: prompts[i%len(prompts)], Width: 96, Height: 96, Quality: "standard"}
		truth := world.Call(sim.Call{RequestID: req.RequestID, Model: req.Model, Mode: req.Mode, Prompt: req.Prompt, Width: 96, Height: 96, Tier: "standard"})
		res, err := p.Generate(context.Background(), req)
		if truth.ErrKind != "" {
			errs++
			if !providers.IsRetryable(err) {
				t.Errorf("%s: world says %s, Generate = %v", req.RequestID, truth.ErrKind, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: Generate: %v", req.RequestID, err)
		}
		pass := c.Check(res.Images[0].Bytes, qa.Spec{Width: 96, Height: 96}).Pass
		if truth.Success {
			ok++
			if pass {
				okPass++
			}
		} else {
			bad++
			if !pass {
				badCaught++
			}
		}
	}
	t.Logf("successes %d (QA pass %d), failures %d (QA caught %d), errors %d", ok, okPass, bad, badCaught, errs)
	if ok == 0 || okPass != ok {
		t.Errorf("QA passed %d of %d successes, want all", okPass, ok)
	}
	if bad == 0 || badCaught == 0 || badCaught == bad {
		t.Errorf("QA caught %d of %d failures, want some but not all", badCaught, bad)
	}
}
