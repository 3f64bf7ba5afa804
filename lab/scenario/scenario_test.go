package scenario_test

import (
	"context"
	"testing"

	"github.com/routelab/routelab/lab/labtest"
	"github.com/routelab/routelab/lab/scenario"
)

// TestLabQualityDropRecovers is the lab acceptance run (the F-scenario
// check, at a fraction of its default sizes: every request goes through
// gateway.Serve, rendering and QA-checking a real image): sim-typo's text
// quality drops mid-run; the loop must notice, and jobs.RunPipeline on the
// events the lab logged must push a policy that comes back to within 2
// points of the success before the drop.
func TestLabQualityDropRecovers(t *testing.T) {
	labtest.Heavy(t)
	sc, ok := scenario.ByName("quality-drop")
	if !ok {
		t.Fatal("no quality-drop scenario")
	}
	rep, err := scenario.Run(context.Background(), sc, scenario.Config{Seed: 1, TrainEvents: 5000, Before: 2500, Baseline: 1200, Window: 5000,
		CanarySteps: []float64{0.5}, CanaryUnits: 500, After: 2500, Progress: t.Logf})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("detected after %v events by %v; success %.4f -> %.4f -> %.4f; pushed %s",
		deref(rep.DetectedAfterEvents), rep.DetectedBy, rep.SuccessBefore, rep.SuccessDuring, rep.SuccessAfter, rep.PushedPolicy)
	if rep.DetectedAfterEvents == nil {
		t.Fatalf("the drop was not detected: %+v", rep.Steps)
	}
	if *rep.DetectedAfterEvents > 5000 {
		t.Errorf("detected after %d events, want within 5000", *rep.DetectedAfterEvents)
	}
	if !rep.Pushed || rep.PushedPolicy == "" || rep.PushedPolicy == rep.InitialPolicy {
		t.Errorf("pushed = %v %q (initial %q), want a new policy pushed; stop reason %q", rep.Pushed, rep.PushedPolicy, rep.InitialPolicy, rep.StopReason)
	}
	// the pipeline learnt from labels (the users' verdicts in the events),
	// which must be the hidden success of the same requests
	for _, st := range rep.Steps {
		if r, ok := st.Report.(map[string]any); ok && st.Name == "window" {
			if r["labelled_success"] != r["hidden_success"] || r["label_agreement"] != 1.0 {
				t.Errorf("window labels: %s (agreement %v), want the hidden success", st.Reason, r["label_agreement"])
			}
		}
	}
	if rep.SuccessDuring >= rep.SuccessBefore {
		t.Errorf("success during %.4f >= before %.4f: the change did not bite", rep.SuccessDuring, rep.SuccessBefore)
	}
	if rep.SuccessAfter < rep.SuccessBefore-0.02 {
		t.Errorf("success after %.4f is more than 2 points below before %.4f", rep.SuccessAfter, rep.SuccessBefore)
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
