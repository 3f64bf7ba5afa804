package experiments

import (
	"fmt"
	"io"
)

// KindHoldout reserves a share of a layer (LayerShare, traffic 1) for
// units always served by a baseline policy (its one arm's
// overrides.policy_version): being an experiment of the layer, its range
// keeps those units out of every other experiment of the layer, so the
// layer's traffic outside it against it measures the cumulative effect of
// everything shipped in the layer since the baseline (HoldoutEffect).
const KindHoldout Kind = "holdout"

func (s *Spec) validateHoldout() error {
	if s.Ramp != nil {
		return invalid("invalid_value", "ramp", "a holdout has no ramp")
	}
	if len(s.Arms) != 1 || s.Arms[0].Overrides.PolicyVersion == "" {
		return invalid("invalid_value", "arms", "a holdout has one arm, whose overrides.policy_version is the baseline policy")
	}
	if s.Traffic != 1 {
		return invalid("out_of_range", "traffic", "a holdout takes every unit of its range (traffic 1); size it with layer_share")
	}
	return nil
}

// HoldoutReport is the cumulative effect of a layer's launches: the
// primary metric per request outside the holdout minus inside it.
type HoldoutReport struct {
	Experiment      string   `json:"experiment"`
	Layer           string   `json:"layer"`
	PrimaryMetric   string   `json:"primary_metric"`
	Baseline        string   `json:"baseline_policy"`
	HoldoutRequests float64  `json:"holdout_requests"`
	RestRequests    float64  `json:"rest_requests"`
	Holdout         float64  `json:"holdout"`
	Rest            float64  `json:"rest"`
	Effect          Estimate `json:"effect"` // rest - holdout
}

// HoldoutEffect compares successes x of n requests outside the holdout
// with those inside it (a two-proportion interval: requests are treated
// as independent; with user units the interval is optimistic).
func HoldoutEffect(s Spec, xHold, nHold, xRest, nRest, alpha float64) HoldoutReport {
	r := HoldoutReport{Experiment: s.ID, Layer: s.Layer, PrimaryMetric: s.PrimaryMetric, HoldoutRequests: nHold, RestRequests: nRest}
	if len(s.Arms) == 1 {
		r.Baseline = s.Arms[0].Overrides.PolicyVersion
	}
	if nHold > 0 {
		r.Holdout = xHold / nHold
	}
	if nRest > 0 {
		r.Rest = xRest / nRest
	}
	r.Effect = TwoProportion(xHold, nHold, xRest, nRest, alpha)
	return r
}

// WriteText prints the report for a terminal.
func (h *HoldoutReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s: holdout of layer %s on %s: %s %.4f in %.0f held-out requests vs %.4f in %.0f others: shipped effect %+.4f [%.4f, %.4f]\n",
		h.Experiment, h.Layer, h.Baseline, h.PrimaryMetric, h.Holdout, h.HoldoutRequests, h.Rest, h.RestRequests, h.Effect.Delta, h.Effect.CILow, h.Effect.CIHigh)
}
