package scenario

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/routelab/routelab/experiments"
	"github.com/routelab/routelab/experiments/ope"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// pipeline runs after an alarm: it gathers a window of served requests
// under the live policy with more exploration, then runs the jobs pipeline
// (jobs.RunPipeline) over the source the lab's events fed, with the
// window's policy as the logging policy, a canary served through the lab
// and a push that makes the candidate live in it. The pipeline's steps
// follow the lab's in rep.
func (l *labLoop) pipeline(ctx context.Context, rep *Report) (jobs.PipelineReport, error) {
	cfg := l.cfg
	served := l.live
	logging := served
	if cfg.WindowEpsilon > served.Epsilon {
		// explore more while the world is known to have moved: the
		// candidate needs outcomes of the models the live policy avoids.
		// The window policy has its own version, so the source tells its
		// decisions apart.
		q := *served
		q.Epsilon = cfg.WindowEpsilon
		q.Version = fmt.Sprintf("%s+eps%.2f", served.Version, cfg.WindowEpsilon)
		logging = &q
	}

	// the window: [virtual time at its start, just past its last decision)
	t0 := time.Now()
	from := l.lb.Now()
	l.live = logging
	hidden := make(map[string]bool, cfg.Window)
	for range cfg.Window {
		ev, err := l.step(ctx, nil)
		if err != nil {
			return jobs.PipelineReport{}, err
		}
		hidden[ev.item.Request.ID] = ev.routedSuccess()
	}
	l.live = served
	w := jobs.Window{From: from, To: l.lb.Now().Add(time.Millisecond)}
	ws, err := l.labelCheck(ctx, w, logging.Version, hidden)
	if err != nil {
		return jobs.PipelineReport{}, err
	}
	ws.DurationMS, ws.AtEvent = since(t0), l.n
	rep.Steps = append(rep.Steps, ws)
	cfg.Progress("lab: window: %s", ws.Reason)

	// three candidates, the best that passes the OPE gate goes on: the
	// live policy recalibrated with thresholds re-chosen, the same with
	// the live thresholds kept (the conservative change), and a refit on
	// the window. Each serves with the live policy's exploration, not the
	// window's.
	recal := func(keep bool) jobs.RecalibrateJob {
		return jobs.RecalibrateJob{Epsilon: served.Epsilon,
			Candidate: jobs.CandidateOptions{KeepThresholds: keep, Recalibrate: jobs.RecalibrateOptions{Name: served.Name}}}
	}
	canary := &labCanary{l: l}
	prep, err := jobs.RunPipeline(ctx, l.src, logging, w, canary, labPusher{l}, jobs.PipelineOptions{
		Recalibrate: recal(false),
		Alternatives: []jobs.Alternative{
			{Name: "recalibrated-live-thresholds", Recalibrate: recal(true)},
			{Name: "refit", Recalibrate: jobs.RecalibrateJob{Refit: true, Epsilon: served.Epsilon}},
		},
		OPE: jobs.OPEJob{OPE: jobs.OPEOptions{Options: ope.Options{Seed: cfg.Seed}, Margin: cfg.OPEMargin}},
		// input drift is recorded, not blocking: the candidate was fitted
		// on the drifted window itself
		DriftBlocks: false,
		Push:        true,
		Audit:       l.src.Audit,
		Now:         l.lb.Now,
	}, cfg.Progress)
	rep.Steps = append(rep.Steps, prep.Steps...)
	if err != nil {
		return prep, fmt.Errorf("pipeline: %w", err)
	}
	return prep, nil
}

// routedSuccess is the hidden truth of what the source labels: the routed
// model's (first attempt's) own image was served and is a success.
func (e *event) routedSuccess() bool {
	d := e.res.Decision
	return e.success() && d != nil && len(d.Attempts) > 0 && d.Attempts[0].Model == d.Model
}

// labelCheck compares the success the source labelled from the window's
// events (QA, the users' signals) with the hidden truth of the same
// requests: the pipeline learns from the former, the world is the latter.
func (l *labLoop) labelCheck(ctx context.Context, w jobs.Window, version string, hidden map[string]bool) (jobs.Step, error) {
	logged, err := l.src.Logged(ctx, w, version, 0, false)
	if err != nil {
		return jobs.Step{}, fmt.Errorf("read the window's labelled decisions: %w", err)
	}
	var y, h, agree float64
	for _, lg := range logged {
		y += lg.Y
		truth := hidden[lg.RequestID]
		if truth {
			h++
		}
		if truth == (lg.Y == 1) {
			agree++
		}
	}
	n := float64(max(len(logged), 1))
	return jobs.Step{Name: "window", Status: "ok",
		Reason: fmt.Sprintf("%d requests under %s, %d labelled decisions: labelled success %.4f, hidden success %.4f", len(hidden), version, len(logged), y/n, h/n),
		Report: map[string]any{"policy_version": version, "window": w, "requests": len(hidden), "labelled": len(logged),
			"labelled_success": y / n, "hidden_success": h / n, "label_agreement": agree / n, "success_quality": sim.SuccessQuality}}, nil
}

// labCanary runs a canary in the lab (jobs.Canary): it serves ramped
// shares of the traffic with the candidate, assigned by unit hash, and
// holds it against the live arm on success as jobs.Labels reads it from
// the events, with a two-proportion test per step.
type labCanary struct{ l *labLoop }

var _ jobs.Canary = (*labCanary)(nil)

// Run implements jobs.Canary. The live arm serves the policy live in the
// lab, not the pipeline's live argument: that is the window's policy,
// whose extra exploration ended with the window.
func (c *labCanary) Run(ctx context.Context, cand, _ *router.Policy) (jobs.CanaryResult, error) {
	cfg := c.l.cfg
	st := &canaryState{cand: cand, salt: "lab-canary-" + cand.Version}
	res := jobs.CanaryResult{Experiment: st.salt}
	steps := []map[string]any{}
	for _, traffic := range cfg.CanarySteps {
		st.traffic = traffic
		arms := map[string]*tally{"live": {}, "candidate": {}}
		for arms["candidate"].n < float64(cfg.CanaryUnits) || arms["live"].n < float64(cfg.CanaryUnits) {
			ev, err := c.l.step(ctx, st)
			if err != nil {
				return res, err
			}
			arms[ev.arm].add(ev, ev.label(c.l.labels))
		}
		lv, cd := arms["live"], arms["candidate"]
		est := experiments.TwoProportion(lv.succ, lv.n, cd.succ, cd.n, 0.05)
		steps = append(steps, map[string]any{
			"traffic": traffic, "live_success": lv.rate(), "candidate_success": cd.rate(), "live_n": lv.n, "candidate_n": cd.n,
			"delta": est.Delta, "ci_low": est.CILow, "ci_high": est.CIHigh, "margin": cfg.CanaryMargin, "at_event": c.l.n})
		res.Report = steps
		if est.CIHigh < -cfg.CanaryMargin || est.Delta < -cfg.CanaryMargin && est.PValue < 0.05 {
			res.Reason = fmt.Sprintf("guardrail at %.0f%%: candidate success %.4f vs live %.4f (delta %.4f, CI [%.4f, %.4f])",
				100*traffic, cd.rate(), lv.rate(), est.Delta, est.CILow, est.CIHigh)
			return res, nil
		}
		cfg.Progress("lab: canary %.0f%%: candidate %.4f vs live %.4f", 100*traffic, cd.rate(), lv.rate())
	}
	var held []string
	for _, s := range steps {
		held = append(held, fmt.Sprintf("%.0f%%: %.4f vs %.4f", 100*s["traffic"].(float64), s["candidate_success"], s["live_success"]))
	}
	res.Passed = true
	res.Reason = "candidate held against live at " + strings.Join(held, ", ")
	return res, nil
}

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

// labPusher makes a policy live in the lab (jobs.Pusher).
type labPusher struct{ l *labLoop }

// Push implements jobs.Pusher.
func (p labPusher) Push(_ context.Context, pol *router.Policy) (string, error) {
	p.l.live = pol
	p.l.lb.SetPolicy(pol)
	return pol.Version, nil
}
