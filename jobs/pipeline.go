package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
	// Alternatives build more candidates from the same window beside
	// Recalibrate's (named "recalibrated"), e.g. one that keeps the live
	// thresholds, or a refit. Every candidate goes through the OPE gate on
	// the same held-out decisions; the one with the highest DR estimate
	// among those that pass goes on to the drift check, the canary and
	// the push. The recalibrate and ope steps then report every candidate
	// ([]CandidateChoice). Ignored when Candidate is set.
	Alternatives []Alternative
	// Audit receives one event per step (nil: none).
	Audit func(ctx context.Context, a events.Audit) error
	Now   func() time.Time
}

// Alternative is one more way to build a candidate (PipelineOptions).
type Alternative struct {
	Name        string
	Recalibrate RecalibrateJob
}

// CandidateChoice is one candidate of a pipeline run with alternatives:
// how it was built and, once gated, its OPE report.
type CandidateChoice struct {
	Name      string           `json:"name"`
	Version   string           `json:"policy_version,omitempty"`
	Error     string           `json:"error,omitempty"` // why it could not be built
	Candidate *CandidateReport `json:"candidate,omitempty"`
	OPE       *OPEReport       `json:"ope,omitempty"`
	Chosen    bool             `json:"chosen"`

	policy *router.Policy
}

// Step is one recorded step of a pipeline run (jobs pipeline's, and the
// lab scenario's around it): what ran, whether it let the pipeline go on,
// and its report.
type Step struct {
	Name       string `json:"name"`
	Status     string `json:"status"` // ok | stopped | skipped
	Reason     string `json:"reason,omitempty"`
	AtEvent    int    `json:"at_event,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	Report     any    `json:"report,omitempty"`
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
	if cand == nil && len(opt.Alternatives) > 0 {
		c, st, err := chooseCandidate(ctx, s, live, w, opt, record, progress)
		if err != nil || c == nil {
			if err == nil {
				return stop(st)
			}
			return rep, err
		}
		cand = c
		rep.Candidate, rep.CandidatePolicy = cand.Version, cand
		if err := record(st); err != nil {
			return rep, err
		}
	} else {
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
		if err := record(Step{Name: "ope", Status: "ok", DurationMS: since(t), Report: orep, Reason: opeReason(orep)}); err != nil {
			return rep, err
		}
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

func opeReason(r OPEReport) string {
	return fmt.Sprintf("DR %.4f [%.4f, %.4f] vs live %.4f (margin %.3f)", r.DR.Value, r.DR.CILow, r.DR.CIHigh, r.LiveValue, r.Margin)
}

// chooseCandidate builds the recalibrated candidate and opt.Alternatives,
// records the recalibrate step, gates each with OPE and returns the best
// that passed with the ope step to record, or nil and the ope step to stop
// at. An error is a failed audit write or a source that could not be read
// for OPE.
func chooseCandidate(ctx context.Context, s Source, live *router.Policy, w Window, opt PipelineOptions,
	record func(Step) error, progress func(string, ...any)) (*router.Policy, Step, error) {
	t := time.Now()
	alts := append([]Alternative{{Name: "recalibrated", Recalibrate: opt.Recalibrate}}, opt.Alternatives...)
	choices := make([]CandidateChoice, len(alts))
	built := 0
	for i, a := range alts {
		c := &choices[i]
		c.Name = a.Name
		p, crep, err := RunRecalibrate(ctx, s, live, w, a.Recalibrate, progress)
		if err != nil {
			c.Error = err.Error()
			continue
		}
		c.Version, c.Candidate, c.policy = p.Version, &crep, p
		built++
	}
	st := Step{Name: "recalibrate", Status: "ok", DurationMS: since(t), Report: slices.Clone(choices),
		Reason: fmt.Sprintf("%d of %d candidates built", built, len(alts))}
	if built == 0 {
		st.Status, st.Reason = "stopped", "no candidate could be built: "+choices[0].Error
		return nil, st, nil
	}
	if err := record(st); err != nil {
		return nil, st, err
	}

	t = time.Now()
	best := -1
	var why []string
	for i := range choices {
		c := &choices[i]
		if c.policy == nil {
			continue
		}
		orep, err := RunOPE(ctx, s, c.policy, live, w, opt.OPE, progress)
		if err != nil {
			return nil, Step{Name: "ope", Status: "stopped", Reason: err.Error(), DurationMS: since(t)}, nil
		}
		c.OPE = &orep
		progress("pipeline: ope %s (%s): %s, pass %v %s", c.Name, c.Version, opeReason(orep), orep.Pass, orep.Reason)
		if !orep.Pass {
			why = append(why, c.Name+": "+orep.Reason)
			continue
		}
		if best < 0 || orep.DR.Value > choices[best].OPE.DR.Value {
			best = i
		}
	}
	if best >= 0 {
		choices[best].Chosen = true
	}
	gated := slices.Clone(choices)
	for i := range gated {
		gated[i].Candidate = nil // in the recalibrate step's report
	}
	st = Step{Name: "ope", Status: "ok", DurationMS: since(t), Report: gated}
	if best < 0 {
		st.Status, st.Reason = "stopped", "no candidate passed: "+strings.Join(why, "; ")
		return nil, st, nil
	}
	c := &choices[best]
	st.Reason = fmt.Sprintf("chose %s (%s): %s", c.Name, c.Version, opeReason(*c.OPE))
	return c.policy, st, nil
}
