package scenario_test

import (
	"context"
	"testing"

	"github.com/routelab/routelab/lab/labtest"
	"github.com/routelab/routelab/lab/scenario"
)

// TestLabShadowChangesNoLiveResponse is the K-learn shadow check at a
// fraction of its size: with a shadow experiment mirroring every request,
// no live response differs from the run without it, none comes from a
// mirror, every mirror is logged as shadow of its live request (RunShadow
// fails otherwise), and the blind review leans to the better candidate.
func TestLabShadowChangesNoLiveResponse(t *testing.T) {
	labtest.Heavy(t)
	rep, err := scenario.RunShadow(context.Background(), scenario.ShadowConfig{Requests: 150, Progress: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pairs; review %d of %d for the candidate; QA %.3f vs %.3f; hidden %.3f vs %.3f; %d ms",
		rep.Pairs, rep.ReviewCandidate, rep.ReviewDecided, rep.LiveQAPass, rep.CandidateQAPass, rep.TruthLive, rep.TruthCandidate, rep.ElapsedMS)
	if rep.LiveChanged != 0 || rep.ShadowReturned != 0 {
		t.Errorf("live changed %d, shadow returned %d; want 0 and 0", rep.LiveChanged, rep.ShadowReturned)
	}
	// every request is mirrored but those the candidate cannot serve
	if rep.Pairs < 135 {
		t.Errorf("%d pairs of 150 requests mirrored, want nearly all", rep.Pairs)
	}
	if rep.ReviewShare <= 0.5 {
		t.Errorf("review prefers the candidate in %.3f of decided pairs, want more than half", rep.ReviewShare)
	}
}
