package experiments

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
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
// primary metric per request outside the holdout minus inside it, over
// units (the randomised unit, so a heavy user's requests count as one
// draw), split by the policy version that served the rest and by day.
type HoldoutReport struct {
	Experiment      string    `json:"experiment"`
	Layer           string    `json:"layer"`
	PrimaryMetric   string    `json:"primary_metric"`
	Baseline        string    `json:"baseline_policy"`
	HoldoutRequests float64   `json:"holdout_requests"`
	RestRequests    float64   `json:"rest_requests"`
	HoldoutUnits    float64   `json:"holdout_units"`
	RestUnits       float64   `json:"rest_units"`
	Holdout         float64   `json:"holdout"`
	Rest            float64   `json:"rest"`
	Effect          *Estimate `json:"effect,omitempty"` // rest - holdout; nil: too few units
	// ByPolicy is the rest's traffic per serving policy version against
	// the whole holdout: which launch the effect came with.
	ByPolicy []HoldoutSlice `json:"by_policy,omitempty"`
	// Daily is each day's rest against that day's holdout.
	Daily []HoldoutSlice `json:"daily,omitempty"`
}

// HoldoutSlice is one part of the rest (a policy version, a day) against
// the holdout's matching part.
type HoldoutSlice struct {
	Key          string    `json:"key"`
	Requests     float64   `json:"requests"`
	Units        float64   `json:"units"`
	Value        float64   `json:"value"`
	HoldoutValue float64   `json:"holdout_value"`
	Effect       *Estimate `json:"effect,omitempty"`
}

// HoldoutData is a holdout's per-unit sums (X the metric's numerator, Y
// requests): inside it and in the rest, overall, per day, and the rest per
// policy version.
type HoldoutData struct {
	Holdout, Rest       RatioMoments
	HoldoutDaily        map[string]RatioMoments
	RestDaily           map[string]RatioMoments
	RestByPolicyVersion map[string]RatioMoments
}

// HoldoutEffect compares the rest with the holdout, overall, per serving
// policy version and per day.
func HoldoutEffect(s Spec, d HoldoutData, alpha float64) HoldoutReport {
	r := HoldoutReport{Experiment: s.ID, Layer: s.Layer, PrimaryMetric: s.PrimaryMetric,
		HoldoutRequests: d.Holdout.SumY, RestRequests: d.Rest.SumY, HoldoutUnits: d.Holdout.N, RestUnits: d.Rest.N,
		Holdout: ratio(d.Holdout), Rest: ratio(d.Rest), Effect: finite(RatioDelta(d.Holdout, d.Rest, alpha))}
	if len(s.Arms) == 1 {
		r.Baseline = s.Arms[0].Overrides.PolicyVersion
	}
	slice := func(key string, hold, rest RatioMoments) HoldoutSlice {
		return HoldoutSlice{Key: key, Requests: rest.SumY, Units: rest.N, Value: ratio(rest), HoldoutValue: ratio(hold), Effect: finite(RatioDelta(hold, rest, alpha))}
	}
	for _, v := range slices.Sorted(maps.Keys(d.RestByPolicyVersion)) {
		r.ByPolicy = append(r.ByPolicy, slice(v, d.Holdout, d.RestByPolicyVersion[v]))
	}
	for _, day := range slices.Sorted(maps.Keys(d.RestDaily)) {
		r.Daily = append(r.Daily, slice(day, d.HoldoutDaily[day], d.RestDaily[day]))
	}
	return r
}

// ratio is X/Y, or 0 with nothing measured.
func ratio(m RatioMoments) float64 {
	if m.SumY == 0 {
		return 0
	}
	return m.SumX / m.SumY
}

// WriteText prints the report for a terminal.
func (h *HoldoutReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s: holdout of layer %s on %s: %s %.4f in %.0f held-out requests (%.0f units) vs %.4f in %.0f others (%.0f units): shipped effect %s\n",
		h.Experiment, h.Layer, h.Baseline, h.PrimaryMetric, h.Holdout, h.HoldoutRequests, h.HoldoutUnits, h.Rest, h.RestRequests, h.RestUnits, deltaText(h.Effect, "%+.4f"))
	for _, part := range []struct {
		title  string
		slices []HoldoutSlice
	}{{"by the policy version serving the rest (each against the whole holdout)", h.ByPolicy}, {"by day (each against that day's holdout)", h.Daily}} {
		if len(part.slices) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", part.title)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\tREQUESTS\tUNITS\tREST\tHOLDOUT\tEFFECT (95% CI)")
		for _, x := range part.slices {
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.4f\t%.4f\t%s\n", x.Key, x.Requests, x.Units, x.Value, x.HoldoutValue, deltaText(x.Effect, "%+.4f"))
		}
		tw.Flush()
	}
}
