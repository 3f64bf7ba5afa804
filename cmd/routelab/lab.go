package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/lab/scenario"
)

func runLab(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(env.Stdout, `Usage: routelab lab scenario NAME [flags]

The lab runs routelab's closed loop in process against the simulated world.

Subcommands:
  scenario NAME   change the world's truth mid-run and run the loop: detect, recalibrate,
                  OPE gate, drift check, canary, push; report what was detected when

Scenarios:`)
		for _, s := range scenario.Scenarios {
			fmt.Fprintf(env.Stdout, "  %-20s %s\n", s.Name, s.Description)
		}
		fmt.Fprintf(env.Stdout, "  %-20s %s\n", "bandit", scenario.BanditDescription)
		fmt.Fprintf(env.Stdout, "  %-20s %s\n", "shadow", scenario.ShadowDescription)
		if len(args) == 0 {
			return errors.New("lab: no subcommand given")
		}
		return nil
	}
	switch args[0] {
	case "scenario":
		return runLabScenario(ctx, env, args[1:])
	}
	return fmt.Errorf("lab: unknown subcommand %q (want scenario)", args[0])
}

func runLabScenario(ctx context.Context, env Env, args []string) error {
	var names []string
	for _, s := range scenario.Scenarios {
		names = append(names, s.Name)
	}
	fs := newFlagSet("lab scenario NAME", `Run one lab scenario in the simulated world, in process (no servers needed):
train a first policy on an exploration log, serve traffic through the gateway in
virtual time, change the world's truth, and let the loop detect the change (CUSUM on
outcome rates, drift checks on the traffic), gather a window, and run the jobs
pipeline on the events the gateway logged (labels from QA and the simulated users'
thumbs up/down): candidates (recalibration with a rule audit and thresholds, the same
with the live thresholds, a refit), the OPE gate picking the best on held-out rows,
the drift check, a canary with a guardrail served in the lab, and the push.
Reports detected_after_events, success_before/during/after and the pushed version.
With tesseract on the PATH the lab runs serve's OCR legibility QA on a sample of the
prompts (--text-qa-sample), and reports per period the requests with target text:
success as QA observed it next to the hidden truth (text), and OCR's reads (ocr).

Scenarios: `+strings.Join(names, ", "))
	fs.SetOutput(env.Stderr)
	asJSON := fs.Bool("json", false, "print the report as one JSON object on the last line")
	seed := fs.Uint64("seed", 1, "seed of the world and the workload")
	train := fs.Int("lab-train-events", 0, "exploration events the first policy is trained on (default 40000)")
	before := fs.Int("lab-before", 0, "events before the change (default 20000)")
	window := fs.Int("lab-window", 0, "events gathered after an alarm to build the candidate (default 25000)")
	after := fs.Int("lab-after", 0, "events measured after the push (default 20000)")
	textQA := addTextQAFlags(fs, 0.05)
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	switch name {
	case "bandit":
		return runLabBandit(ctx, env, args)
	case "shadow":
		return runLabShadow(ctx, env, args)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	sc, ok := scenario.ByName(name)
	if !ok {
		return fmt.Errorf("lab scenario: unknown scenario %q (want one of %s)", name, strings.Join(names, ", "))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var lcfg lab.Config
	if err := textQA.configure(env, "lab scenario "+name, &lcfg); err != nil {
		return err
	}
	rep, err := scenario.Run(ctx, sc, scenario.Config{
		Seed: *seed, TrainEvents: *train, Before: *before, Window: *window, After: *after,
		OCR: lcfg.OCR, OCRSample: lcfg.OCRSample,
		Progress: stderrProgress(env),
	})
	if err != nil {
		return fmt.Errorf("lab scenario %s: %w", name, err)
	}
	if *asJSON {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, string(b))
		return nil
	}
	det := "nothing"
	if rep.DetectedAfterEvents != nil {
		det = fmt.Sprintf("after %d events (%s)", *rep.DetectedAfterEvents, strings.Join(rep.DetectedBy, ", "))
	}
	fmt.Fprintf(env.Stdout, "scenario %s: %s\n", rep.Scenario, rep.Description)
	fmt.Fprintf(env.Stdout, "detected: %s\n", det)
	for _, s := range rep.Steps {
		fmt.Fprintf(env.Stdout, "  step %-14s %-8s %s\n", s.Name, s.Status, s.Reason)
	}
	fmt.Fprintf(env.Stdout, "success before %.4f, during %.4f, after %.4f\n", rep.SuccessBefore, rep.SuccessDuring, rep.SuccessAfter)
	for _, period := range []string{"before", "during", "after"} {
		if t, ok := rep.Text[period]; ok {
			fmt.Fprintf(env.Stdout, "  %s: %s\n", period, t.Line(rep.TextQA))
		}
	}
	if rep.TextQA {
		fmt.Fprintln(env.Stdout, ocrLine(rep.OCR))
	}
	fmt.Fprintf(env.Stdout, "policy %s -> pushed %q\n", rep.InitialPolicy, rep.PushedPolicy)
	if rep.StopReason != "" {
		fmt.Fprintf(env.Stdout, "stopped: %s\n", rep.StopReason)
	}
	return nil
}

// runLabBandit is `routelab lab scenario bandit`: Thompson allocation
// against fixed splits and the oracle over several seeds.
func runLabBandit(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("lab scenario bandit", `Run the bandit scenario in the simulated world, in process: a bandit experiment
of three arms (pins to sim-fast, sim-editor and sim-typo; sim-typo is better on
text requests only) is served through the gateway, re-weighted on schedule by
Thompson sampling per feature group from the outcomes the gateway logged (the
users' thumbs up/down). Reports per seed the regret of the bandit, of a fixed
equal split and of the oracle against the hidden truth, and whether the doubly
robust estimate of the equal split's value from the bandit's own logs (logged
propensities) covers its true value.`)
	fs.SetOutput(env.Stderr)
	asJSON := fs.Bool("json", false, "print the report as one JSON object on the last line")
	seed := fs.Uint64("seed", 1, "first seed; the runs use seed, seed+1, ...")
	seeds := fs.Int("seeds", 5, "runs, one per seed")
	requests := fs.Int("lab-requests", 0, "requests served per seed (default 1500)")
	textQA := addTextQAFlags(fs, 0.1)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lcfg lab.Config
	if err := textQA.configure(env, "lab scenario bandit", &lcfg); err != nil {
		return err
	}
	rep, err := scenario.RunBandit(ctx, scenario.BanditConfig{
		Seed: *seed, Seeds: *seeds, Requests: *requests,
		OCR: lcfg.OCR, OCRSample: lcfg.OCRSample,
		Progress: stderrProgress(env),
	})
	if err != nil {
		return fmt.Errorf("lab scenario bandit: %w", err)
	}
	if *asJSON {
		return printJSON(env.Stdout, rep)
	}
	rep.WriteText(env.Stdout)
	return nil
}

// runLabShadow is `routelab lab scenario shadow`: a shadow experiment's
// mirrors change no live response and find the better candidate.
func runLabShadow(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("lab scenario shadow", `Run the shadow scenario in the simulated world, in process: the same workload is
served by two labs of the same seed, one with a shadow experiment mirroring a share of
live requests to a candidate (a model pin) after each response. Reports live_changed
(live responses that differ from the run without the experiment: 0), the pairs
(mirrors logged with shadow and the live request's id), live and candidate QA pass,
cost and latency on the pairs, per feature group, the blind pairwise review of the
pairs by the lab's simulated reviewer, and candidate_better (the candidate preferred
in more than half of the decided pairs at 95%), with the hidden truth beside it.`)
	fs.SetOutput(env.Stderr)
	asJSON := fs.Bool("json", false, "print the report as one JSON object on the last line")
	seed := fs.Uint64("seed", 1, "seed of the world and the workload")
	requests := fs.Int("lab-requests", 0, "live requests (default 600)")
	share := fs.Float64("shadow-share", 0, "share of live requests mirrored (default 1)")
	candidate := fs.String("shadow-candidate", "", "the candidate's model (default sim-premium)")
	textQA := addTextQAFlags(fs, 0.1)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lcfg lab.Config
	if err := textQA.configure(env, "lab scenario shadow", &lcfg); err != nil {
		return err
	}
	rep, err := scenario.RunShadow(ctx, scenario.ShadowConfig{
		Seed: *seed, Requests: *requests, Share: *share, Candidate: *candidate,
		OCR: lcfg.OCR, OCRSample: lcfg.OCRSample,
		Progress: stderrProgress(env),
	})
	if err != nil {
		return fmt.Errorf("lab scenario shadow: %w", err)
	}
	if *asJSON {
		return printJSON(env.Stdout, rep)
	}
	rep.WriteText(env.Stdout)
	return nil
}
