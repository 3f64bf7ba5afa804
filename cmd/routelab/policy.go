package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/providers/sim"
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
	subs := policySubcommands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stdout, "Usage: routelab policy SUBCOMMAND [flags]\n\nSubcommands:")
		names := make([]string, 0, len(subs))
		for n := range subs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(env.Stdout, "  %-10s %s\n", n, subs[n].Summary)
		}
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	c, ok := subs[args[0]]
	if !ok {
		return fmt.Errorf("unknown policy subcommand %q", args[0])
	}
	return c.Run(ctx, env, args[1:])
}

// printJSON writes v as one line: the last line of stdout for --json.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

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
		Progress: func(format string, a ...any) { fmt.Fprintf(env.Stderr, format+"\n", a...) },
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
	printFrontier(env.Stdout, p)
	return nil
}

func printFrontier(w io.Writer, p *router.Policy) {
	fmt.Fprintf(w, "policy %s  held-out ECE %.4f  Brier %.4f  edit-depth limit %d\n", p.Version, p.Metrics.ECE, p.Metrics.Brier, p.EditDepthLimit)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "tier\tthreshold\texp. success\tmean cost\t")
	for _, t := range []router.Tier{router.TierDraft, router.TierStandard, router.TierPremium} {
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

// rulesPolicy loads the policy whose rules and catalog a training run
// starts from.
func rulesPolicy(path string) (*router.Policy, error) {
	if path == "" {
		return datasets.Policy("rules")
	}
	return loadPolicy(path)
}

// evalReport is `policy eval --json`.
type evalReport struct {
	Workload    string             `json:"workload"`
	Requests    int                `json:"requests"`
	WorldSeed   uint64             `json:"world_seed"`
	Policy      string             `json:"policy"`
	Version     string             `json:"version"`
	Policies    []sim.PolicyResult `json:"policies"`
	Calibration evalCalibration    `json:"calibration"`
	Frontier    []frontierPoint    `json:"frontier"`
	Targets     map[string]any     `json:"targets"`
	Seconds     float64            `json:"seconds"`
}

// frontierPoint is the evaluated policy re-run with one threshold for all
// tiers: the realised cost/success frontier it can reach.
type frontierPoint struct {
	Threshold   float64 `json:"threshold"`
	SuccessRate float64 `json:"success_rate"`
	MeanCostUSD float64 `json:"mean_cost_usd"`
	Regret      float64 `json:"regret"`
}

type evalCalibration struct {
	ECE         float64                   `json:"ece"`
	Brier       float64                   `json:"brier"`
	N           int                       `json:"n"`
	Reliability []router.ReliabilityPoint `json:"reliability"`
}

func runPolicyEval(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("policy eval", `Evaluate a policy on a (held-out) workload in the simulated world, against the baselines
always:<model> for every catalog model, rules-only (the shipped hand-written rules),
random (uniform over eligible models) and oracle (knows the hidden truth). Reports
success rate, mean cost, p50/p95 latency and regret against the oracle (expected success
from the true probabilities), and the calibration (ECE over 15 bins, Brier) of the
policy's predicted P for the model it routed to.`)
	fs.SetOutput(env.Stderr)
	policyPath := fs.String("policy", "", "policy JSON to evaluate")
	workload := fs.String("workload", "", "workload JSONL")
	seed := fs.Uint64("world-seed", 7, "seed of the simulated world's draws")
	workers := fs.Int("workers", 2, "parallel workers")
	asJSON := fs.Bool("json", false, "print one JSON object as the last line of stdout")
	withFrontier := fs.Bool("frontier", true, "also re-run the policy at thresholds 0.5..1 (one for all tiers) to report its realised cost/success frontier")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *policyPath == "" || *workload == "" {
		return fmt.Errorf("--policy and --workload are required")
	}
	start := time.Now()
	p, err := loadPolicy(*policyPath)
	if err != nil {
		return err
	}
	items, err := loadWorkload(*workload)
	if err != nil {
		return err
	}
	jobs := make([]sim.Job, len(items))
	for i := range items {
		jobs[i] = sim.Job{Req: items[i].Request, Task: items[i].Task}
	}
	shipped, err := datasets.Policy("rules")
	if err != nil {
		return err
	}
	rulesOnly := &router.Policy{Name: "rules-only", Models: p.Models, DefaultModel: p.DefaultModel, Rules: shipped.Rules, EditDepthLimit: shipped.EditDepthLimit}
	random := &router.Policy{Name: "random", Models: p.Models, DefaultModel: p.DefaultModel, Epsilon: 1}
	for _, q := range []*router.Policy{rulesOnly, random} {
		if err := q.Seal(); err != nil {
			return err
		}
	}
	w := sim.NewWorld(router.Catalog{Models: p.Models}, *seed)

	fmt.Fprintf(env.Stderr, "eval: %d requests, oracle first\n", len(jobs))
	oracle, oracleP := w.Run("oracle", jobs, w.OracleChooser(rulesOnly), nil, nil)
	type row struct {
		name   string
		choose sim.Chooser
		calib  *sim.Calib
	}
	name := p.Name
	if name == "oracle" || name == "random" || name == "rules-only" || strings.HasPrefix(name, "always:") {
		name = "policy:" + name
	}
	calib := &sim.Calib{}
	rows := []row{{name, sim.PolicyChooser(p), calib}, {"rules-only", sim.PolicyChooser(rulesOnly), nil}, {"random", sim.PolicyChooser(random), nil}}
	for _, m := range p.Models {
		rows = append(rows, row{"always:" + m.Name, sim.PinChooser(rulesOnly, m.Name), nil})
	}
	results := make([]sim.PolicyResult, len(rows))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(*workers, 1))
	for i := range rows {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			results[i], _ = w.Run(rows[i].name, jobs, rows[i].choose, oracleP, rows[i].calib)
			fmt.Fprintf(env.Stderr, "eval: %s done\n", rows[i].name)
		}(i)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	var frontier []frontierPoint
	if p.Classifier != nil && *withFrontier {
		thr := []float64{0.5, 0.6, 0.7, 0.72, 0.74, 0.76, 0.78, 0.8, 0.82, 0.84, 0.86, 0.88, 0.9, 0.95, 1}
		frontier = make([]frontierPoint, len(thr))
		for i, t := range thr {
			q := *p
			q.Thresholds = map[router.Tier]float64{router.TierDraft: t, router.TierStandard: t, router.TierPremium: t}
			q.Version = fmt.Sprintf("%s@%.2f", p.Version, t)
			if err := q.Seal(); err != nil {
				return err
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(i int, q *router.Policy) {
				defer func() { <-sem; wg.Done() }()
				r, _ := w.Run(q.Version, jobs, sim.PolicyChooser(q), oracleP, nil)
				frontier[i] = frontierPoint{Threshold: thr[i], SuccessRate: r.SuccessRate, MeanCostUSD: r.MeanCostUSD, Regret: r.Regret}
			}(i, &q)
		}
		wg.Wait()
		fmt.Fprintf(env.Stderr, "eval: frontier done\n")
	}
	oracle.Regret = 0
	results = append(results, oracle)
	rep := evalReport{Workload: *workload, Requests: len(jobs), WorldSeed: *seed, Policy: p.Name, Version: p.Version, Policies: results, Frontier: frontier}
	rep.Calibration.ECE, rep.Calibration.Brier, rep.Calibration.Reliability = router.Calibration(calib.P, calib.Success, nil)
	rep.Calibration.N = len(calib.P)
	rep.Targets = targets(results, rep.Calibration.ECE, frontier)
	rep.Seconds = time.Since(start).Seconds()
	if !*asJSON {
		printEval(env.Stdout, &rep)
		return nil
	}
	printEval(env.Stderr, &rep)
	return printJSON(env.Stdout, rep)
}

// targets compares the evaluated policy (first row) with the best single
// model and rules-only, as the router issue states its targets.
func targets(rs []sim.PolicyResult, ece float64, frontier []frontierPoint) map[string]any {
	t := rs[0]
	var best, rules sim.PolicyResult
	for _, r := range rs {
		if strings.HasPrefix(r.Name, "always:") && r.SuccessRate > best.SuccessRate {
			best = r
		}
		if r.Name == "rules-only" {
			rules = r
		}
	}
	ratio := math.NaN()
	if best.MeanCostUSD > 0 {
		ratio = t.MeanCostUSD / best.MeanCostUSD
	}
	out := map[string]any{
		"best_single":          best.Name,
		"success_gap_vs_best":  t.SuccessRate - best.SuccessRate,
		"cost_ratio_vs_best":   ratio,
		"within_1pt_of_best":   t.SuccessRate >= best.SuccessRate-0.01,
		"cost_at_most_half":    ratio <= 0.5,
		"beats_rules_only":     t.SuccessRate >= rules.SuccessRate || t.MeanCostUSD < rules.MeanCostUSD,
		"success_gap_vs_rules": t.SuccessRate - rules.SuccessRate,
		"cost_ratio_vs_rules":  t.MeanCostUSD / math.Max(rules.MeanCostUSD, 1e-12),
		"ece_at_most_0.03":     ece <= 0.03,
	}
	if at, ok := successAtCost(frontier, rules.MeanCostUSD); ok {
		// The RouteLLM-style comparison: on the policy's own frontier, what
		// success does rules-only's budget buy?
		out["frontier_success_at_rules_only_cost"] = at
		out["frontier_beats_rules_only"] = at >= rules.SuccessRate
	}
	return out
}

// successAtCost interpolates the realised frontier linearly in cost.
func successAtCost(f []frontierPoint, cost float64) (float64, bool) {
	pts := append([]frontierPoint(nil), f...)
	sort.Slice(pts, func(i, j int) bool { return pts[i].MeanCostUSD < pts[j].MeanCostUSD })
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		if cost >= a.MeanCostUSD && cost <= b.MeanCostUSD && b.MeanCostUSD > a.MeanCostUSD {
			t := (cost - a.MeanCostUSD) / (b.MeanCostUSD - a.MeanCostUSD)
			return a.SuccessRate + t*(b.SuccessRate-a.SuccessRate), true
		}
	}
	return 0, false
}

func printEval(w io.Writer, r *evalReport) {
	fmt.Fprintf(w, "policy %s on %s (%d requests, world seed %d)\n", r.Version, r.Workload, r.Requests, r.WorldSeed)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "router\tsuccess\tmean cost\tp50 ms\tp95 ms\tregret\tsuccess w/o latency budget\t")
	for _, p := range r.Policies {
		fmt.Fprintf(tw, "%s\t%.4f\t$%.4f\t%.0f\t%.0f\t%.4f\t%.4f\t\n", p.Name, p.SuccessRate, p.MeanCostUSD, p.P50LatencyMS, p.P95LatencyMS, p.Regret, p.SuccessNoBudget)
	}
	tw.Flush()
	if len(r.Frontier) > 0 {
		fmt.Fprintf(w, "realised frontier of %s (one threshold for all tiers):\n", r.Policy)
		for _, f := range r.Frontier {
			fmt.Fprintf(w, "  threshold %.2f  success %.4f  mean cost $%.4f  regret %.4f\n", f.Threshold, f.SuccessRate, f.MeanCostUSD, f.Regret)
		}
	}
	fmt.Fprintf(w, "calibration of %s: ECE %.4f  Brier %.4f  (n=%d)\n", r.Policy, r.Calibration.ECE, r.Calibration.Brier, r.Calibration.N)
	keys := make([]string, 0, len(r.Targets))
	for k := range r.Targets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %v\n", k, r.Targets[k])
	}
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
	p, err := loadPolicy(fs.Arg(0))
	if err != nil {
		return err
	}
	s := summarize(p)
	if *asJSON {
		return printJSON(env.Stdout, s)
	}
	fmt.Fprintf(env.Stdout, "policy %s\n  version  %s\n  checksum %s\n  models   %s (default %s)\n  epsilon  %g\n  edit-depth limit %d\n",
		p.Name, p.Version, p.Checksum, strings.Join(s.Models, ", "), p.DefaultModel, p.Epsilon, p.EditDepthLimit)
	if p.Thresholds != nil {
		fmt.Fprintf(env.Stdout, "  thresholds draft %.2f standard %.2f premium %.2f\n", p.Thresholds[router.TierDraft], p.Thresholds[router.TierStandard], p.Thresholds[router.TierPremium])
	}
	for _, r := range p.Rules {
		fmt.Fprintf(env.Stdout, "  rule %-22s -> %s\n", r.Name, r.Model)
	}
	if p.TrainingWindow != nil {
		fmt.Fprintf(env.Stdout, "  trained on %d events from %s\n", p.TrainingWindow.Events, p.TrainingWindow.Source)
	}
	if p.Metrics != nil {
		for _, m := range p.Metrics.PerModel {
			fmt.Fprintf(env.Stdout, "  %-12s %-8s ECE platt %.4f isotonic %.4f  Brier %.4f  (train %d, held out %d)\n",
				m.Model, m.Calibrator, m.ECEPlatt, m.ECEIso, m.Brier, m.Train, m.Holdout)
		}
		for _, a := range p.Metrics.RuleAudit {
			fmt.Fprintf(env.Stdout, "  audit %-22s matched %d  rule P %.3f $%.4f  classifier P %.3f $%.4f  kept %v\n",
				a.Rule, a.Matched, a.RuleP, a.RuleCost, a.ClassP, a.ClassCost, a.Kept)
		}
		printFrontier(env.Stdout, p)
	}
	return nil
}

type policySummary struct {
	Name           string                  `json:"name"`
	Version        string                  `json:"version"`
	Checksum       string                  `json:"checksum"`
	Models         []string                `json:"models"`
	DefaultModel   string                  `json:"default_model"`
	Epsilon        float64                 `json:"epsilon"`
	EditDepthLimit int                     `json:"edit_depth_limit"`
	Thresholds     map[router.Tier]float64 `json:"thresholds,omitempty"`
	Rules          []router.Rule           `json:"rules,omitempty"`
	Calibrators    map[string]string       `json:"calibrators,omitempty"`
	TrainingWindow *router.TrainingWindow  `json:"training_window,omitempty"`
	ECE            *float64                `json:"ece,omitempty"`
	Brier          *float64                `json:"brier,omitempty"`
}

func summarize(p *router.Policy) policySummary {
	s := policySummary{Name: p.Name, Version: p.Version, Checksum: p.Checksum, DefaultModel: p.DefaultModel, Epsilon: p.Epsilon,
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
	a, err := loadPolicy(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := loadPolicy(fs.Arg(1))
	if err != nil {
		return err
	}
	var changes []string
	add := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }
	if a.Version != b.Version {
		add("version: %s -> %s", a.Version, b.Version)
	}
	if a.Epsilon != b.Epsilon {
		add("epsilon: %g -> %g", a.Epsilon, b.Epsilon)
	}
	if a.EditDepthLimit != b.EditDepthLimit {
		add("edit_depth_limit: %d -> %d", a.EditDepthLimit, b.EditDepthLimit)
	}
	if a.DefaultModel != b.DefaultModel {
		add("default_model: %s -> %s", a.DefaultModel, b.DefaultModel)
	}
	for _, t := range []router.Tier{router.TierDraft, router.TierStandard, router.TierPremium} {
		if a.Thresholds[t] != b.Thresholds[t] {
			add("threshold %s: %.2f -> %.2f", t, a.Thresholds[t], b.Thresholds[t])
		}
	}
	ruleSet := func(p *router.Policy) map[string]string {
		m := map[string]string{}
		for _, r := range p.Rules {
			j, _ := json.Marshal(r)
			m[r.Name] = string(j)
		}
		return m
	}
	ra, rb := ruleSet(a), ruleSet(b)
	for n, j := range ra {
		if k, ok := rb[n]; !ok {
			add("rule removed: %s", n)
		} else if k != j {
			add("rule changed: %s", n)
		}
	}
	for n := range rb {
		if _, ok := ra[n]; !ok {
			add("rule added: %s", n)
		}
	}
	ma, mb := map[string]bool{}, map[string]bool{}
	for _, m := range a.Models {
		ma[m.Name] = true
	}
	for _, m := range b.Models {
		mb[m.Name] = true
		if !ma[m.Name] {
			add("model added: %s", m.Name)
		}
	}
	for _, m := range a.Models {
		if !mb[m.Name] {
			add("model removed: %s", m.Name)
		}
	}
	weightDist := map[string]float64{}
	if a.Classifier != nil && b.Classifier != nil {
		for m, wa := range a.Classifier.Weights {
			if wb, ok := b.Classifier.Weights[m]; ok && len(wa) == len(wb) {
				s := 0.0
				for i := range wa {
					s += (wa[i] - wb[i]) * (wa[i] - wb[i])
				}
				weightDist[m] = math.Sqrt(s)
			}
			if a.Calibration[m].Kind != b.Calibration[m].Kind {
				add("calibrator %s: %s -> %s", m, a.Calibration[m].Kind, b.Calibration[m].Kind)
			}
		}
	} else if (a.Classifier == nil) != (b.Classifier == nil) {
		add("classifier: present %v -> %v", a.Classifier != nil, b.Classifier != nil)
	}
	sort.Strings(changes)
	out := map[string]any{"a": a.Version, "b": b.Version, "changes": changes, "weight_l2_distance": weightDist}
	if *workload != "" {
		items, err := loadWorkload(*workload)
		if err != nil {
			return err
		}
		moved := map[string]int{}
		differ := 0
		for i := range items {
			da := router.Decide(items[i].Request, a, nil)
			db := router.Decide(items[i].Request, b, nil)
			if da.Greedy != db.Greedy {
				differ++
				moved[da.Greedy+" -> "+db.Greedy]++
			}
		}
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
