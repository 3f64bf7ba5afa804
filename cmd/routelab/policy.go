package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/tesseract"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/router"
)

// policySubcommands lists `routelab policy X`; one line per subcommand
// (push and rollback live in their own file).
func policySubcommands() map[string]command {
	return map[string]command{
		"train":    {"train a policy from logged decisions", runPolicyTrain},
		"eval":     {"evaluate a policy against baselines in the simulated world", runPolicyEval},
		"show":     {"print a policy's summary", runPolicyShow},
		"diff":     {"compare two policies", runPolicyDiff},
		"push":     {"publish a policy file; live on every serve replica", runPolicyPush},
		"rollback": {"make the previous policy version live again", runPolicyRollback},
	}
}

func runPolicy(ctx context.Context, env Env, args []string) error {
	return group{Intro: "Usage: routelab policy SUBCOMMAND [flags]\n\nSubcommands:", Width: 10, NoArgs: errUsage,
		Unknown: "unknown policy subcommand %q", Subs: policySubcommands()}.run(ctx, env, args)
}

// printJSON writes v as one line: the last line of stdout for --json.
func printJSON(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

func runPolicyTrain(_ context.Context, env Env, args []string) error {
	fs := newFlagSet("policy train", `Train a routing policy from logged decisions (routelab sim output, or any JSONL of
events.Decision lines): per-model IPS-weighted L2 logistic regression (gonum L-BFGS),
Platt or isotonic calibration picked on held-out data, per-tier thresholds on the
calibrated cost/success frontier, an edit-depth limit, and the rules of --rules-from
kept only where the data supports them. Prints the held-out ECE/Brier and frontier.`)
	fs.SetOutput(env.Stderr)
	logged := fs.String("logged", "", "logged decisions JSONL")
	out := fs.String("out", "", "output policy JSON")
	name := fs.String("name", "trained", "policy name")
	eps := fs.Float64("epsilon", 0.02, "exploration rate of the trained policy")
	lambda := fs.Float64("l2", 0, "L2 penalty; 0 picks it per model from 1e-3, 3e-3, 1e-2 by held-out log-loss")
	unweighted := fs.Bool("unweighted", false, "turn inverse-propensity weighting off (for comparison only)")
	rulesFrom := fs.String("rules-from", "", "policy whose rules to audit and keep (default: the shipped rules policy)")
	workers := fs.Int("workers", 2, "parallel workers")
	asJSON := fs.Bool("json", false, "print a JSON summary as the last line of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *logged == "" || *out == "" {
		return fmt.Errorf("--logged and --out are required")
	}
	start := time.Now()
	f, err := os.Open(*logged)
	if err != nil {
		return err
	}
	ex, lines, err := datasets.ReadExamples(f, *workers, func(n int) { fmt.Fprintf(env.Stderr, "train: read %d lines\n", n) })
	f.Close()
	if err != nil {
		return err
	}
	readTime, readCPU := time.Since(start), cpuTime()
	fmt.Fprintf(env.Stderr, "train: %d lines, %d labelled examples, read in %s\n", lines, len(ex), readTime.Round(time.Millisecond))
	base, err := rulesPolicy(*rulesFrom)
	if err != nil {
		return err
	}
	t0 := time.Now()
	p, err := router.Train(ex, router.TrainConfig{
		Name: *name, Models: base.Models, DefaultModel: base.DefaultModel, Rules: base.Rules, Epsilon: *eps,
		Lambda: *lambda, Unweighted: *unweighted, Workers: *workers, Source: *logged,
		Progress: stderrProgress(env),
	})
	if err != nil {
		return err
	}
	trainTime, trainCPU := time.Since(t0), cpuTime()-readCPU
	b, err := p.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "train: wrote %s (%s) in %s total (%s CPU: %s reading, %s training)\n", *out, p.Version,
		time.Since(start).Round(time.Millisecond), cpuTime().Round(time.Millisecond), readCPU.Round(time.Millisecond), trainCPU.Round(time.Millisecond))
	summary := map[string]any{
		"version": p.Version, "checksum": p.Checksum, "examples": len(ex), "lines": lines,
		"read_seconds": readTime.Seconds(), "train_seconds": trainTime.Seconds(), "total_seconds": time.Since(start).Seconds(),
		"read_cpu_seconds": readCPU.Seconds(), "train_cpu_seconds": trainCPU.Seconds(), "cpu_seconds": cpuTime().Seconds(),
		"ece": p.Metrics.ECE, "brier": p.Metrics.Brier, "thresholds": p.Thresholds, "edit_depth_limit": p.EditDepthLimit,
		"rules_kept": len(p.Rules), "per_model": p.Metrics.PerModel, "frontier": p.Metrics.Frontier,
	}
	if *asJSON {
		return printJSON(env.Stdout, summary)
	}
	router.WriteFrontier(env.Stdout, p)
	return nil
}

// rulesPolicy loads the policy whose rules and catalog a training run
// starts from.
func rulesPolicy(path string) (*router.Policy, error) {
	if path == "" {
		return datasets.Policy("rules")
	}
	return datasets.LoadPolicy(path)
}

func runPolicyEval(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("policy eval", `Evaluate a policy on a (held-out) workload in the simulated world, against the baselines
always:<model> for every catalog model, rules-only (the shipped hand-written rules),
random (uniform over eligible models) and oracle (knows the hidden truth). Reports
success rate, mean cost, p50/p95 latency and regret against the oracle (expected success
from the true probabilities), and the calibration (ECE over 15 bins, Brier) of the
policy's predicted P for the model it routed to; the share of requests with words to
render sent to a text-capable model (and of the others), and QA's OCR legibility check
on a sample of text outputs against the hidden truth.`)
	fs.SetOutput(env.Stderr)
	policyPath := fs.String("policy", "", "policy JSON to evaluate")
	workload := fs.String("workload", "", "workload JSONL")
	seed := fs.Uint64("world-seed", 7, "seed of the simulated world's draws")
	workers := fs.Int("workers", 2, "parallel workers")
	asJSON := fs.Bool("json", false, "print one JSON object as the last line of stdout")
	withFrontier := fs.Bool("frontier", true, "also re-run the policy at thresholds 0.5..1 (one for all tiers) to report its realised cost/success frontier")
	ocrSample := fs.Int("ocr-sample", 200, "render the outputs of this many requests with target text and read them with Tesseract (QA's legibility check) to report its agreement with the hidden truth; 0 skips it (also without tesseract)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *policyPath == "" || *workload == "" {
		return fmt.Errorf("--policy and --workload are required")
	}
	start := time.Now()
	p, err := datasets.LoadPolicy(*policyPath)
	if err != nil {
		return err
	}
	items, err := datasets.LoadWorkload(*workload)
	if err != nil {
		return err
	}
	cfg := jobs.EvalConfig{WorldSeed: *seed, Workers: *workers, Frontier: *withFrontier, Progress: stderrProgress(env)}
	if *ocrSample > 0 {
		if bin, err := tesseract.Find(); err != nil {
			fmt.Fprintf(env.Stderr, "policy eval: no OCR agreement: %v\n", err)
		} else {
			cfg.OCR, cfg.OCRSample = tesseract.New(bin, *workers, tesseract.PSMSparse), *ocrSample
		}
	}
	rep, err := jobs.EvalPolicy(ctx, p, items, cfg)
	if err != nil {
		return err
	}
	rep.Workload, rep.Seconds = *workload, time.Since(start).Seconds()
	if !*asJSON {
		rep.WriteText(env.Stdout)
		return nil
	}
	rep.WriteText(env.Stderr)
	return printJSON(env.Stdout, rep)
}

func runPolicyShow(_ context.Context, env Env, args []string) error {
	fs := newFlagSet("policy show", "Print a policy's version, checksum, rules, thresholds, calibration and frontier.\nUsage: routelab policy show [--json] POLICY.json")
	fs.SetOutput(env.Stderr)
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("want one policy file")
	}
	p, err := datasets.LoadPolicy(fs.Arg(0))
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, router.Summarize(p))
	}
	router.WriteSummary(env.Stdout, p)
	return nil
}

func runPolicyDiff(_ context.Context, env Env, args []string) error {
	fs := newFlagSet("policy diff", `Compare two policies: settings, rules, calibrators, classifier weights (L2 distance per
model) and, with --workload, how many requests they route differently.
Usage: routelab policy diff [--workload W.jsonl] [--json] A.json B.json`)
	fs.SetOutput(env.Stderr)
	workload := fs.String("workload", "", "workload JSONL to compare routes on")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("want two policy files")
	}
	a, err := datasets.LoadPolicy(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := datasets.LoadPolicy(fs.Arg(1))
	if err != nil {
		return err
	}
	d := router.Diff(a, b)
	changes, weightDist := d.Changes, d.WeightL2
	out := map[string]any{"a": a.Version, "b": b.Version, "changes": changes, "weight_l2_distance": weightDist}
	if *workload != "" {
		items, err := datasets.LoadWorkload(*workload)
		if err != nil {
			return err
		}
		reqs := make([]router.Request, len(items))
		for i := range items {
			reqs[i] = items[i].Request
		}
		differ, moved := router.RouteMoves(reqs, a, b)
		out["requests"] = len(items)
		out["routed_differently"] = differ
		out["moves"] = moved
	}
	if *asJSON {
		return printJSON(env.Stdout, out)
	}
	fmt.Fprintf(env.Stdout, "%s -> %s\n", a.Version, b.Version)
	for _, c := range changes {
		fmt.Fprintln(env.Stdout, "  "+c)
	}
	for m, d := range weightDist {
		fmt.Fprintf(env.Stdout, "  weights %s: L2 distance %.4f\n", m, d)
	}
	if n, ok := out["routed_differently"]; ok {
		fmt.Fprintf(env.Stdout, "  routed differently: %d of %d requests\n", n, out["requests"])
		moves := out["moves"].(map[string]int)
		keys := make([]string, 0, len(moves))
		for k := range moves {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return moves[keys[i]] > moves[keys[j]] })
		for _, k := range keys {
			fmt.Fprintf(env.Stdout, "    %-28s %d\n", k, moves[k])
		}
	}
	return nil
}
