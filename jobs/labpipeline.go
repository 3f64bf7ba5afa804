package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/experiments/ope"
	"github.com/routelab/routelab/router"
)

// canaryState assigns requests to the canary's arms by unit hash.
type canaryState struct {
	cand    *router.Policy
	salt    string
	traffic float64
}

func (c *canaryState) assign(r router.Request) string {
	unit := r.Unit
	if unit == "" {
		unit = r.ID
	}
	if float64(experiments.Bucket(c.salt, unit)) < c.traffic*float64(experiments.Buckets) {
		return "candidate"
	}
	return "live"
}

// pipeline is the lab's jobs pipeline after an alarm: gather a window,
// build the candidate, OPE gate, drift check, canary, push.
func (l *labLoop) pipeline(ctx context.Context, rep *LabReport, during *tally) (bool, error) {
	cfg := l.cfg
	// window
	t0 := time.Now()
	var rows []Row
	var win []event
	served := l.live
	if cfg.WindowEpsilon > served.Epsilon {
		// explore more while the world is known to have moved: the
		// candidate needs outcomes of the models the live policy avoids
		q := *l.live
		q.Epsilon = cfg.WindowEpsilon
		q.Version = fmt.Sprintf("%s+eps%.2f", l.live.Version, cfg.WindowEpsilon)
		l.live = &q
	}
	for range cfg.Window {
		ev, err := l.step(ctx, nil)
		if err != nil {
			return false, err
		}
		during.add(ev)
		win = append(win, ev)
		if r, ok := ev.row(); ok {
			rows = append(rows, r)
		}
	}
	windowPolicy := l.live
	l.live = served
	w := Window{From: time.UnixMilli(int64(l.n - cfg.Window)), To: time.UnixMilli(int64(l.n))}
	// candidates: the live policy recalibrated (thresholds re-chosen, or
	// kept), and a refit on the exploration log plus the window; OPE on the
	// window's held-out rows picks among those that pass the gate
	type candidate struct {
		name string
		p    *router.Policy
		rep  any
	}
	var cands []candidate
	bins := BinsFromRows(rows)
	for _, keep := range []bool{false, true} {
		name := "recalibrated"
		if keep {
			name = "recalibrated-live-thresholds"
		}
		cand, crep, err := BuildCandidate(l.live, bins, rows, w, CandidateOptions{KeepThresholds: keep, Recalibrate: RecalibrateOptions{Name: l.live.Name}})
		if err != nil {
			rep.Steps = append(rep.Steps, Step{Name: "recalibrate", Status: "stopped", Reason: err.Error(), DurationMS: since(t0)})
			rep.StopReason = "recalibrate: " + err.Error()
			return false, nil
		}
		cfg.Progress("lab: candidate %s (%s): ece %.4f -> %.4f, dropped rules %v, thresholds %v", cand.Version, name, crep.ECEBefore, crep.ECEAfter, crep.DroppedRules, crep.Thresholds)
		cands = append(cands, candidate{name, cand, summarizeCandidate(crep)})
	}
	// the refit never sees the held-out rows OPE evaluates on
	var wex []router.Example
	for _, ev := range win {
		if r, ok := ev.row(); ok && !r.Holdout() {
			if x, ok := ev.example(); ok {
				wex = append(wex, x)
			}
		}
	}
	refit, err := router.Train(append(append([]router.Example{}, l.trainEx...), wex...), router.TrainConfig{Name: l.live.Name, Models: l.live.Models,
		DefaultModel: l.live.DefaultModel, Rules: l.rules, Epsilon: cfg.Epsilon, Source: "lab refit: exploration log + window"})
	if err == nil {
		cands = append(cands, candidate{"refit", refit, map[string]any{"policy_version": refit.Version, "examples": len(l.trainEx) + len(wex), "thresholds": refit.Thresholds}})
		cfg.Progress("lab: candidate %s (refit on %d examples)", refit.Version, len(l.trainEx)+len(wex))
	} else {
		cfg.Progress("lab: refit failed: %v", err)
	}
	rep.Steps = append(rep.Steps, Step{Name: "recalibrate", Status: "ok", AtEvent: rep.ChangeAtEvent + int(during.n), DurationMS: since(t0), Report: cands})

	// OPE on the window's held-out rows
	t0 = time.Now()
	var logged []LoggedRequest
	for _, ev := range win {
		r, ok := ev.row()
		if !ok || !r.Holdout() {
			continue
		}
		logged = append(logged, LoggedRequest{Req: ev.item.Request, Model: ev.model(), Propensity: ev.res.Route.Propensity, Y: r.Y})
	}
	var reports []map[string]any
	best := -1
	var bestRep OPEReport
	for i, c := range cands {
		orep := EvaluateLogged(logged, c.p, windowPolicy, w, OPEOptions{Options: ope.Options{Seed: cfg.Seed}, Margin: cfg.OPEMargin})
		reports = append(reports, map[string]any{"candidate": c.name, "report": orep})
		cfg.Progress("lab: ope %s: dr %.4f [%.4f, %.4f] vs live %.4f, ess %.0f, pass %v %s", c.name, orep.DR.Value, orep.DR.CILow, orep.DR.CIHigh, orep.LiveValue, orep.ESS, orep.Pass, orep.Reason)
		if orep.Pass && (best < 0 || orep.DR.Value > bestRep.DR.Value) {
			best, bestRep = i, orep
		}
	}
	st := Step{Name: "ope", Status: "ok", DurationMS: since(t0), Report: reports}
	if best < 0 {
		st.Status, st.Reason = "stopped", "no candidate passed the OPE gate"
		rep.Steps = append(rep.Steps, st)
		rep.StopReason = "ope: no candidate passed the gate"
		return false, nil
	}
	cand := cands[best].p
	st.Reason = fmt.Sprintf("chose %s (%s): DR %.4f vs live %.4f", cands[best].name, cand.Version, bestRep.DR.Value, bestRep.LiveValue)
	rep.Steps = append(rep.Steps, st)

	// drift check on the window: recorded; input drift does not block a
	// candidate fitted on the drifted window itself
	checks := l.driftChecks()
	var breached []string
	for _, c := range checks {
		if c.Breached {
			breached = append(breached, c.Name)
		}
	}
	dst := Step{Name: "drift", Status: "ok", Report: checks}
	if len(breached) > 0 {
		dst.Reason = "input drift in " + strings.Join(breached, ", ") + "; the candidate was fitted on the drifted window"
	}
	rep.Steps = append(rep.Steps, dst)

	// canary with a guardrail on success, ramped by steps
	canary := &canaryState{cand: cand, salt: "lab-canary-" + cand.Version}
	for _, traffic := range cfg.CanarySteps {
		t0 = time.Now()
		canary.traffic = traffic
		var arms = map[string]*tally{"live": {}, "candidate": {}}
		for arms["candidate"].n < float64(cfg.CanaryUnits) || arms["live"].n < float64(cfg.CanaryUnits) {
			ev, err := l.step(ctx, canary)
			if err != nil {
				return false, err
			}
			during.add(ev)
			arms[ev.arm].add(ev)
		}
		c, t := arms["live"], arms["candidate"]
		est := experiments.TwoProportion(c.succ, c.n, t.succ, t.n, 0.05)
		step := Step{Name: fmt.Sprintf("canary-%.0f%%", 100*traffic), Status: "ok", DurationMS: since(t0), Report: map[string]any{
			"traffic": traffic, "live_success": c.rate(), "candidate_success": t.rate(), "live_n": c.n, "candidate_n": t.n,
			"delta": est.Delta, "ci_low": est.CILow, "ci_high": est.CIHigh, "margin": cfg.CanaryMargin}}
		if est.CIHigh < -cfg.CanaryMargin || est.Delta < -cfg.CanaryMargin && est.PValue < 0.05 {
			step.Status = "stopped"
			step.Reason = fmt.Sprintf("guardrail: candidate success %.4f vs live %.4f (delta %.4f, CI [%.4f, %.4f])", t.rate(), c.rate(), est.Delta, est.CILow, est.CIHigh)
			rep.Steps = append(rep.Steps, step)
			rep.StopReason = "canary rolled back: " + step.Reason
			return false, nil
		}
		rep.Steps = append(rep.Steps, step)
		cfg.Progress("lab: canary %.0f%%: candidate %.4f vs live %.4f", 100*traffic, t.rate(), c.rate())
	}

	// promote
	rep.Steps = append(rep.Steps, Step{Name: "push", Status: "ok", Reason: "promoted " + cand.Version + " (parent " + l.live.Version + ")", AtEvent: rep.ChangeAtEvent + int(during.n)})
	l.live = cand
	return true, nil
}

// summarizeCandidate keeps the parts of a candidate report worth printing.
func summarizeCandidate(c CandidateReport) map[string]any {
	var models []map[string]any
	for _, m := range c.Models {
		models = append(models, map[string]any{"model": m.Model, "fit_rows": m.FitRows, "ece_before": m.Before.ECE, "ece_after": m.After.ECE, "changed": m.Changed})
	}
	return map[string]any{
		"policy_version": c.PolicyVersion, "parent_version": c.Parent, "ece_before": c.ECEBefore, "ece_after": c.ECEAfter,
		"brier_before": c.BrierBefore, "brier_after": c.BrierAfter, "thresholds": c.Thresholds, "dropped_rules": c.DroppedRules,
		"rule_audit": c.Rules, "models": models, "rows": c.Rows,
	}
}
