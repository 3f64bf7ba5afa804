package router

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Summary is a policy at a glance (routelab policy show --json).
type Summary struct {
	Name           string            `json:"name"`
	Version        string            `json:"version"`
	Checksum       string            `json:"checksum"`
	Models         []string          `json:"models"`
	DefaultModel   string            `json:"default_model"`
	Epsilon        float64           `json:"epsilon"`
	EditDepthLimit int               `json:"edit_depth_limit"`
	Thresholds     map[Tier]float64  `json:"thresholds,omitempty"`
	Rules          []Rule            `json:"rules,omitempty"`
	Calibrators    map[string]string `json:"calibrators,omitempty"`
	TrainingWindow *TrainingWindow   `json:"training_window,omitempty"`
	ECE            *float64          `json:"ece,omitempty"`
	Brier          *float64          `json:"brier,omitempty"`
}

// Summarize returns p's summary.
func Summarize(p *Policy) Summary {
	s := Summary{Name: p.Name, Version: p.Version, Checksum: p.Checksum, DefaultModel: p.DefaultModel, Epsilon: p.Epsilon,
		EditDepthLimit: p.EditDepthLimit, Thresholds: p.Thresholds, Rules: p.Rules, TrainingWindow: p.TrainingWindow}
	for _, m := range p.Models {
		s.Models = append(s.Models, m.Name)
	}
	if len(p.Calibration) > 0 {
		s.Calibrators = map[string]string{}
		for m, c := range p.Calibration {
			s.Calibrators[m] = c.Kind
		}
	}
	if p.Metrics != nil {
		s.ECE, s.Brier = &p.Metrics.ECE, &p.Metrics.Brier
	}
	return s
}

// WriteSummary prints p as routelab policy show does: settings, rules,
// calibration per model, the rule audit and the frontier.
func WriteSummary(w io.Writer, p *Policy) {
	s := Summarize(p)
	fmt.Fprintf(w, "policy %s\n  version  %s\n  checksum %s\n  models   %s (default %s)\n  epsilon  %g\n  edit-depth limit %d\n",
		p.Name, p.Version, p.Checksum, strings.Join(s.Models, ", "), p.DefaultModel, p.Epsilon, p.EditDepthLimit)
	if p.Thresholds != nil {
		fmt.Fprintf(w, "  thresholds draft %.2f standard %.2f premium %.2f\n", p.Thresholds[TierDraft], p.Thresholds[TierStandard], p.Thresholds[TierPremium])
	}
	for _, r := range p.Rules {
		fmt.Fprintf(w, "  rule %-22s -> %s\n", r.Name, r.Model)
	}
	if p.TrainingWindow != nil {
		fmt.Fprintf(w, "  trained on %d events from %s\n", p.TrainingWindow.Events, p.TrainingWindow.Source)
	}
	if p.Metrics != nil {
		for _, m := range p.Metrics.PerModel {
			fmt.Fprintf(w, "  %-12s %-8s ECE platt %.4f isotonic %.4f  Brier %.4f  (train %d, held out %d)\n",
				m.Model, m.Calibrator, m.ECEPlatt, m.ECEIso, m.Brier, m.Train, m.Holdout)
		}
		for _, a := range p.Metrics.RuleAudit {
			fmt.Fprintf(w, "  audit %-22s matched %d  rule P %.3f $%.4f  classifier P %.3f $%.4f  kept %v\n",
				a.Rule, a.Matched, a.RuleP, a.RuleCost, a.ClassP, a.ClassCost, a.Kept)
		}
		WriteFrontier(w, p)
	}
}

// WriteFrontier prints p's held-out calibration and, per tier, its
// cost/success frontier in steps of half a point with the chosen threshold.
func WriteFrontier(w io.Writer, p *Policy) {
	fmt.Fprintf(w, "policy %s  held-out ECE %.4f  Brier %.4f  edit-depth limit %d\n", p.Version, p.Metrics.ECE, p.Metrics.Brier, p.EditDepthLimit)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "tier\tthreshold\texp. success\tmean cost\t")
	for _, t := range []Tier{TierDraft, TierStandard, TierPremium} {
		last := -1.0
		pts := p.Metrics.Frontier[t]
		for i, fp := range pts {
			// Print the frontier in steps of half a point of success,
			// plus its ends and the chosen threshold.
			if !fp.Chosen && i != 0 && i != len(pts)-1 && fp.Success-last < 0.005 {
				continue
			}
			last = fp.Success
			mark := ""
			if fp.Chosen {
				mark = "<- chosen"
			}
			fmt.Fprintf(tw, "%s\t%.2f\t%.4f\t$%.4f\t%s\n", t, fp.Threshold, fp.Success, fp.CostUSD, mark)
		}
	}
	tw.Flush()
}
