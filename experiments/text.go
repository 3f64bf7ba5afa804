package experiments

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

func pct(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := 100 * *p
	return &v
}

// fmtPct formats a share as a percentage.
func fmtPct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

func fmtOpt(p *float64, format string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf(format, *p)
}

// WriteText prints the report as `routelab experiments results` shows it:
// arms, each treatment against control, guardrails.
func (r Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s  %s  [%s, phase %d, traffic %g]\n", r.Experiment, r.Name, r.Status, r.Phase, r.Traffic)
	srm := "ok"
	if r.SRM {
		srm = "SAMPLE RATIO MISMATCH: do not trust the deltas"
	}
	fmt.Fprintf(w, "units %.0f, requests %.0f, SRM p = %.3g (%s)\n\n", r.Units, r.Requests, r.SRMPValue, srm)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ARM\tUNITS\tSHARE\tEXPECTED\tREQUESTS\t%s\t95%% CI\n", strings.ToUpper(r.PrimaryMetric))
	for _, a := range r.Arms {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%.0f\t%s\t[%s, %s]\n", a.Arm, a.Units, fmtPct(a.Share), fmtPct(a.ExpectedShare), a.Requests,
			fmtOpt(a.Value, "%.4g"), fmtOpt(a.CILow, "%.4g"), fmtOpt(a.CIHigh, "%.4g"))
	}
	tw.Flush()
	for _, t := range r.Treatments {
		fmt.Fprintf(w, "\n%s vs control\n", t.Arm)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "METRIC\tDELTA\tREL\t95% CI\tP\tHOLM P\tALWAYS-VALID P")
		for _, m := range append([]string{r.PrimaryMetric}, metricNames(t.Metrics, r.PrimaryMetric)...) {
			c, ok := t.Metrics[m]
			if !ok {
				continue
			}
			fmt.Fprintf(tw, "%s\t%.4g\t%s\t[%s, %s]\t%s\t%s\t%s\n", m, c.Delta, fmtOpt(pct(c.Relative), "%+.1f%%"),
				fmtOpt(c.CILow, "%.4g"), fmtOpt(c.CIHigh, "%.4g"), fmtOpt(c.PValue, "%.3g"), fmtOpt(c.AdjustedPValue, "%.3g"), fmtOpt(c.AlwaysValidPValue, "%.3g"))
		}
		tw.Flush()
		if t.CUPED != nil {
			fmt.Fprintf(w, "CUPED (%s numerator per unit): delta %.4g [%.4g, %.4g], variance reduction %.1f%%\n", r.PrimaryMetric,
				t.CUPED.Estimate.Delta, t.CUPED.Estimate.CILow, t.CUPED.Estimate.CIHigh, 100*t.CUPED.VarianceReduction)
		}
	}
	if len(r.CostSpeed) > 0 {
		fmt.Fprintf(w, "\ncost and speed (successes per dollar; share of requests that succeeded within their latency budget: the request's own, else its tier's: %s)\n", r.LatencyBudgets)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ARM\tSUCCESS / $\t95% CI\tVS CONTROL\tIN BUDGET\t95% CI\tVS CONTROL")
		for _, c := range r.CostSpeed {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Arm, valueText(c.SuccessPerDollar, "%.2f"), intervalText(c.SuccessPerDollar, "%.2f"),
				deltaText(c.DeltaPerDollar, "%+.2f"), valueText(c.SuccessInBudget, "%.4f"), intervalText(c.SuccessInBudget, "%.4f"), deltaText(c.DeltaInBudget, "%+.4f"))
		}
		tw.Flush()
	}
	if len(r.Guardrails) > 0 {
		fmt.Fprintln(w, "\nguardrails")
		for _, g := range r.Guardrails {
			state := "ok"
			switch {
			case g.Breached:
				state = "BREACHED: " + g.Reason
			case !g.Ready:
				state = "not enough units yet"
			}
			fmt.Fprintf(w, "  %s %s = %.4g (control %.4g): %s\n", g.Arm, g.Metric, g.Value, g.Control, state)
		}
	}
}

func metricNames(m map[string]Comparison, skip string) []string {
	var out []string
	for _, n := range append(RatioMetrics, "latency_p50_ms", "latency_p95_ms") {
		if _, ok := m[n]; ok && n != skip {
			out = append(out, n)
		}
	}
	return out
}

// WriteText prints the validation as `routelab experiments validate`
// shows it, each figure against its bounds.
func (r ValidationReport) WriteText(w io.Writer) {
	ok := func(b bool) string {
		if b {
			return "ok"
		}
		return "OUT OF BOUNDS"
	}
	fmt.Fprintf(w, "A/A false-positive rate     %.4f over %d tests   [0.04, 0.06] %s\n", r.AAFalsePositiveRate, r.AATests, ok(r.AAFalsePositiveRate >= 0.04 && r.AAFalsePositiveRate <= 0.06))
	fmt.Fprintf(w, "CI coverage (known effect)  %.4f over %d intervals [0.94, 0.96] %s\n", r.CICoverage, r.CoverageIntervals, ok(r.CICoverage >= 0.94 && r.CICoverage <= 0.96))
	fmt.Fprintf(w, "peeking every %d units:    fixed-horizon FPR %.4f, mSPRT FPR %.4f (<= %.2f) %s\n", r.PeekEvery, r.PeekingFixedHorizonFPR, r.PeekingMSPRTFPR, r.Alpha, ok(r.PeekingMSPRTFPR <= r.Alpha))
	fmt.Fprintf(w, "known effect +%.3f, %d/arm: power %.4f, calculator %.4f, mSPRT %.4f\n", r.KnownEffect, r.KnownEffectUnits, r.KnownEffectPower, r.CalculatorPower, r.MSPRTPower)
	fmt.Fprintf(w, "SRM at %d units: clean p %.3g, 1-point bug p %.3g, detected %v %s\n", r.SRMUnits, r.SRMCleanPValue, r.SRMBugPValue, r.SRMDetected, ok(r.SRMDetected && !r.SRMFalseAlarm))
}
