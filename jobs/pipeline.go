package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/routelab/routelab/events"
	"github.com/routelab/routelab/router"
)

// Canary runs a candidate as a canary experiment against the live policy,
// ramping by steps with guardrails, and reports whether it held. It is
// implemented by the experiments control plane; Run returns an error only
// when the canary could not be run at all (a rollback is a result).
type Canary interface {
	Run(ctx context.Context, cand, live *router.Policy) (CanaryResult, error)
}

// CanaryResult is what a canary run ended with.
type CanaryResult struct {
	Experiment string `json:"experiment"`
	Passed     bool   `json:"passed"`
	Reason     string `json:"reason,omitempty"`
	Report     any    `json:"report,omitempty"`
}

// Pusher makes a policy live (the admin API's policy push); it returns the
// version that is live afterwards.
type Pusher interface {
	Push(ctx context.Context, p *router.Policy) (string, error)
}

// PipelineOptions configure jobs pipeline.
type PipelineOptions struct {
	Recalibrate RecalibrateJob
	OPE         OPEJob
	Drift       DriftConfig
	// DriftBlocks stops the pipeline on a drift breach (default true in
	// the command): a candidate should not be pushed into a world nobody
	// has looked at.
	DriftBlocks bool
	// SkipCanary pushes without a canary when no canary runner exists;
	// without it the pipeline stops at the canary step.
	SkipCanary bool
	// Push false makes a dry run: every gate runs, nothing is pushed.
	Push bool
	// Candidate, when set, is gated instead of recalibrating a new one.
	Candidate *router.Policy
	// Audit receives one event per step (nil: none).
	Audit func(ctx context.Context, a events.Audit) error
	Now   func() time.Time
}

// PipelineReport is the outcome of jobs pipeline.
type PipelineReport struct {
	Job       string `json:"job"`
	Live      string `json:"live_version"`
	Candidate string `json:"candidate_version,omitempty"`
	Window    Window `json:"window"`
	Steps     []Step `json:"steps"`
	Pushed    bool   `json:"pushed"`
	Version   string `json:"policy_version,omitempty"` // live after the run
	Stopped   string `json:"stopped_at,omitempty"`
	Reason    string `json:"reason,omitempty"`
	ElapsedMS int64  `json:"elapsed_ms"`
	// CandidatePolicy is the candidate gated (nil when recalibration failed).
	CandidatePolicy *router.Policy `json:"-"`
}

// RunPipeline chains recalibrate -> OPE gate -> drift check -> canary ->
// promote, and stops at the first gate that fails, with its reason. Every
// step is recorded in the report and, when opt.Audit is set, as an audit
// event "jobs.pipeline.<step>".
func RunPipeline(ctx context.Context, s Source, live *router.Policy, w Window, canary Canary, pusher Pusher, opt PipelineOptions, progress func(string, ...any)) (PipelineReport, error) {
	start := time.Now()
	if opt.Now == nil {
		opt.Now = time.Now
	}
	rep := PipelineReport{Job: "pipeline", Live: live.Version, Window: w, Steps: []Step{}, Version: live.Version}
	record := func(st Step) error {
		rep.Steps = append(rep.Steps, st)
		progress("pipeline: %s %s %s", st.Name, st.Status, st.Reason)
		if opt.Audit == nil {
			return nil
		}
		subject := rep.Candidate
		if subject == "" {
			subject = live.Version
		}
		a, err := NewAudit(opt.Now(), "jobs.pipeline."+st.Name, subject, st)
		if err != nil {
			return err
		}
		return opt.Audit(ctx, a)
	}
	stop := func(st Step) (PipelineReport, error) {
		st.Status = "stopped"
		rep.Stopped, rep.Reason = st.Name, st.Reason
		err := record(st)
		rep.ElapsedMS = since(start)
		return rep, err
	}

	// 1. recalibrate
	t := time.Now()
	cand := opt.Candidate
	if cand == nil {
		c, crep, err := RunRecalibrate(ctx, s, live, w, opt.Recalibrate, progress)
		if err != nil {
			return stop(Step{Name: "recalibrate", Reason: err.Error(), DurationMS: since(t)})
		}
		cand = c
		if err := record(Step{Name: "recalibrate", Status: "ok", DurationMS: since(t), Report: crep}); err != nil {
			return rep, err
		}
	} else if err := record(Step{Name: "recalibrate", Status: "skipped", Reason: "candidate given: " + cand.Version}); err != nil {
		return rep, err
	}
	rep.Candidate, rep.CandidatePolicy = cand.Version, cand

	// 2. OPE gate
	t = time.Now()
	orep, err := RunOPE(ctx, s, cand, live, w, opt.OPE, progress)
	if err != nil {
		return stop(Step{Name: "ope", Reason: err.Error(), DurationMS: since(t)})
	}
	if orep.Refused {
		return stop(Step{Name: "ope", Reason: "refused: " + orep.Reason, DurationMS: since(t), Report: orep})
	}
	if !orep.Pass {
		return stop(Step{Name: "ope", Reason: orep.Reason, DurationMS: since(t), Report: orep})
	}
	if err := record(Step{Name: "ope", Status: "ok", DurationMS: since(t), Report: orep,
		Reason: fmt.Sprintf("DR %.4f [%.4f, %.4f] vs live %.4f (margin %.3f)", orep.DR.Value, orep.DR.CILow, orep.DR.CIHigh, orep.LiveValue, orep.Margin)}); err != nil {
		return rep, err
	}

	// 3. drift check
	t = time.Now()
	drep, err := Drift(ctx, s, live, w, opt.Drift, progress)
	if err != nil {
		return stop(Step{Name: "drift", Reason: err.Error(), DurationMS: since(t)})
	}
	if drep.Breached && opt.DriftBlocks {
		return stop(Step{Name: "drift", Reason: fmt.Sprintf("drift breached: %v", drep.Breaches), DurationMS: since(t), Report: drep})
	}
	dst := Step{Name: "drift", Status: "ok", DurationMS: since(t), Report: drep}
	if drep.Breached {
		dst.Reason = fmt.Sprintf("drift breached (%v) and not blocking", drep.Breaches)
	}
	if err := record(dst); err != nil {
		return rep, err
	}

	// 4. canary
	t = time.Now()
	switch {
	case !opt.Push:
		// a canary routes live traffic: it is part of the push
		if err := record(Step{Name: "canary", Status: "skipped", Reason: "dry run (--push not given): no canary on live traffic"}); err != nil {
			return rep, err
		}
	case canary != nil:
		res, err := canary.Run(ctx, cand, live)
		if err != nil {
			return stop(Step{Name: "canary", Reason: err.Error(), DurationMS: since(t)})
		}
		if !res.Passed {
			return stop(Step{Name: "canary", Reason: "rolled back: " + res.Reason, DurationMS: since(t), Report: res})
		}
		if err := record(Step{Name: "canary", Status: "ok", Reason: res.Experiment + ": " + res.Reason, DurationMS: since(t), Report: res}); err != nil {
			return rep, err
		}
	case opt.SkipCanary:
		if err := record(Step{Name: "canary", Status: "skipped", Reason: "no canary runner; skipped on request (--skip-canary)"}); err != nil {
			return rep, err
		}
	default:
		return stop(Step{Name: "canary", Reason: "no canary runner is configured (pass --skip-canary to promote without one)"})
	}

	// 5. promote
	if !opt.Push || pusher == nil {
		err := record(Step{Name: "push", Status: "skipped", Reason: "dry run (--push not given)"})
		rep.ElapsedMS = since(start)
		return rep, err
	}
	t = time.Now()
	v, err := pusher.Push(ctx, cand)
	if err != nil {
		return stop(Step{Name: "push", Reason: err.Error(), DurationMS: since(t)})
	}
	rep.Pushed, rep.Version = true, v
	err = record(Step{Name: "push", Status: "ok", Reason: fmt.Sprintf("%s is live (parent %s)", v, live.Version), DurationMS: since(t)})
	rep.ElapsedMS = since(start)
	return rep, err
}
