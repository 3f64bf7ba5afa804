package scenario_test

import (
	"context"
	"testing"

	"github.com/routelab/routelab/lab/labtest"
	"github.com/routelab/routelab/lab/scenario"
)

// TestLabBanditBeatsFixedSplit is the K-learn bandit check at a fraction
// of its size (one seed, 800 requests): Thompson allocation per feature
// group, fed by the outcomes the gateway logged, must keep well under the
// regret of a fixed equal split, send the text group to sim-typo, and the
// logged propensities must give an estimate of the equal split's value
// whose interval holds the truth.
func TestLabBanditBeatsFixedSplit(t *testing.T) {
	labtest.Heavy(t)
	rep, err := scenario.RunBandit(context.Background(), scenario.BanditConfig{Seeds: 1, Requests: 800, Progress: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Seeds[0]
	t.Logf("regret %.1f vs fixed %.1f; %d reweights; weights %v; outcomes %v; %d ms",
		s.RegretBandit, s.RegretFixed, s.Reweights, s.Weights, s.Outcomes, s.ElapsedMS)
	if s.Reweights == 0 || s.LabelAgreement != 1 {
		t.Errorf("%d reweights, label agreement %v; want some, and logged outcomes that are the hidden success", s.Reweights, s.LabelAgreement)
	}
	if w := s.Weights["text"]; len(w) != 3 || w[2] < 0.8 {
		t.Errorf("text weights %v, want sim-typo (arm 3) above 0.8", w)
	}
	if rep.RegretRatio > 0.6 {
		t.Errorf("regret bandit %.1f / fixed %.1f = %.2f, want <= 0.6 at 800 requests", rep.MeanRegretBandit, rep.MeanRegretFixed, rep.RegretRatio)
	}
	if !s.OPECoversTruth {
		t.Errorf("OPE of the equal split %.4f [%.4f, %.4f] misses the truth %.4f", s.OPEUniform, s.OPELow, s.OPEHigh, s.TruthUniform)
	}
}
