package jobs

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

// EvalReport is a policy's evaluation against the baselines in the
// simulated world (routelab policy eval --json prints it).
type EvalReport struct {
	Workload    string             `json:"workload"`
	Requests    int                `json:"requests"`
	WorldSeed   uint64             `json:"world_seed"`
	Policy      string             `json:"policy"`
	Version     string             `json:"version"`
	Policies    []sim.PolicyResult `json:"policies"`
	Calibration EvalCalibration    `json:"calibration"`
	Frontier    []FrontierPoint    `json:"frontier"`
	Targets     map[string]any     `json:"targets"`
	Text        TextRouting        `json:"text"`
	Seconds     float64            `json:"seconds"`
}

// FrontierPoint is the evaluated policy re-run with one threshold for all
// tiers: the realised cost/success frontier it can reach.
type FrontierPoint struct {
	Threshold   float64 `json:"threshold"`
	SuccessRate float64 `json:"success_rate"`
	MeanCostUSD float64 `json:"mean_cost_usd"`
	Regret      float64 `json:"regret"`
}

// EvalCalibration is the calibration of the policy's predicted P for the
// model it routed to.
type EvalCalibration struct {
	ECE         float64                   `json:"ece"`
	Brier       float64                   `json:"brier"`
	N           int                       `json:"n"`
	Reliability []router.ReliabilityPoint `json:"reliability"`
}

// EvalConfig shapes a policy evaluation.
type EvalConfig struct {
	WorldSeed uint64 // seed of the simulated world's draws
	Workers   int    // policies run in parallel
	// Frontier also re-runs the policy at thresholds 0.5..1 (one for all
	// tiers) for its realised cost/success frontier (a classifier policy
	// only).
	Frontier bool
	// OCR reads the outputs of OCRSample requests with target text, drawn
	// by a hash of the request id, for text tasks' success as the
	// legibility check observes it and its agreement with the hidden
	// truth; nil: routing shares only.
	OCR       qa.OCR
	OCRSample int
	Progress  func(string, ...any)
}

// EvalPolicy runs items through p in the simulated world, and through the
// baselines: always:<model> for every model of p's catalog, rules-only (the
// shipped hand-written rules), random (uniform over eligible models) and
// oracle (knows the hidden truth). Regret is against the oracle's expected
// success from the true probabilities.
func EvalPolicy(ctx context.Context, p *router.Policy, items []datasets.WorkItem, cfg EvalConfig) (EvalReport, error) {
	start := time.Now()
	jobs := make([]sim.Job, len(items))
	for i := range items {
		jobs[i] = sim.Job{Req: items[i].Request, Task: items[i].Task}
	}
	shipped, err := datasets.Policy("rules")
	if err != nil {
		return EvalReport{}, err
	}
	rulesOnly := &router.Policy{Name: "rules-only", Models: p.Models, DefaultModel: p.DefaultModel, Rules: shipped.Rules, EditDepthLimit: shipped.EditDepthLimit}
	random := &router.Policy{Name: "random", Models: p.Models, DefaultModel: p.DefaultModel, Epsilon: 1}
	for _, q := range []*router.Policy{rulesOnly, random} {
		if err := q.Seal(); err != nil {
			return EvalReport{}, err
		}
	}
	w := sim.NewWorld(router.Catalog{Models: p.Models}, cfg.WorldSeed)

	cfg.Progress("eval: %d requests, oracle first", len(jobs))
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
	sem := make(chan struct{}, max(cfg.Workers, 1))
	for i := range rows {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			results[i], _ = w.Run(rows[i].name, jobs, rows[i].choose, oracleP, rows[i].calib)
			cfg.Progress("eval: %s done", rows[i].name)
		}(i)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return EvalReport{}, err
	}
	var frontier []FrontierPoint
	if p.Classifier != nil && cfg.Frontier {
		thr := []float64{0.5, 0.6, 0.7, 0.72, 0.74, 0.76, 0.78, 0.8, 0.82, 0.84, 0.86, 0.88, 0.9, 0.95, 1}
		frontier = make([]FrontierPoint, len(thr))
		for i, t := range thr {
			q := *p
			q.Thresholds = map[router.Tier]float64{router.TierDraft: t, router.TierStandard: t, router.TierPremium: t}
			q.Version = fmt.Sprintf("%s@%.2f", p.Version, t)
			if err := q.Seal(); err != nil {
				return EvalReport{}, err
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(i int, q *router.Policy) {
				defer func() { <-sem; wg.Done() }()
				r, _ := w.Run(q.Version, jobs, sim.PolicyChooser(q), oracleP, nil)
				frontier[i] = FrontierPoint{Threshold: thr[i], SuccessRate: r.SuccessRate, MeanCostUSD: r.MeanCostUSD, Regret: r.Regret}
			}(i, &q)
		}
		wg.Wait()
		cfg.Progress("eval: frontier done")
	}
	cfg.Progress("eval: text routing of %s", name)
	text, err := evalText(ctx, w, p, jobs, sim.PolicyChooser(p), cfg.OCR, cfg.OCRSample, cfg.Workers)
	if err != nil {
		return EvalReport{}, err
	}
	oracle.Regret = 0
	results = append(results, oracle)
	rep := EvalReport{Requests: len(jobs), WorldSeed: cfg.WorldSeed, Policy: p.Name, Version: p.Version, Policies: results, Frontier: frontier}
	rep.Calibration.ECE, rep.Calibration.Brier, rep.Calibration.Reliability = router.Calibration(calib.P, calib.Success, nil)
	rep.Calibration.N = len(calib.P)
	rep.Targets = targets(results, rep.Calibration.ECE, frontier)
	rep.Text = text
	rep.Targets["text_to_text_capable_at_least_0.9"] = text.WithTextToCapable >= 0.9
	rep.Targets["no_text_to_typography_specialist_at_most_0.1"] = text.WithoutTextToSpecialist <= 0.1
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// targets compares the evaluated policy (first row) with the best single
// model and rules-only, as the router issue states its targets.
func targets(rs []sim.PolicyResult, ece float64, frontier []FrontierPoint) map[string]any {
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
func successAtCost(f []FrontierPoint, cost float64) (float64, bool) {
	pts := append([]FrontierPoint(nil), f...)
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

// WriteText prints the report as tables.
func (r *EvalReport) WriteText(w io.Writer) {
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
	r.Text.writeText(w, r.Policy)
	keys := make([]string, 0, len(r.Targets))
	for k := range r.Targets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %v\n", k, r.Targets[k])
	}
}
