package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/lab"
	"github.com/routelab/routelab/providers/sim"
	"github.com/routelab/routelab/router"
)

func runSim(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("sim", `Run a workload through a routing policy in the simulated world and write one logged
decision event per request (JSONL). Every request is served by the same serving core
as routelab serve (routing, providers with retries and breakers, automated QA on the
rendered images, OCR legibility QA on prompts with words to render when tesseract is on
PATH (on a --text-qa-sample of the prompts), fallback, escalation, edit-chain
restarts), in virtual time, so each
line is the events.Decision serve emits (propensity, candidates, features, attempts,
cost, latency, qa_pass) plus width, height, greedy model, the drawn quality and the
simulated user's feedback signal (thumbs_up when the image's hidden quality is a success,
thumbs_down when not, on --feedback of the served requests). Train a policy from it with
"routelab policy train": its labels are QA pass without a thumbs_down, as in production.`)
	fs.SetOutput(env.Stderr)
	workload := fs.String("workload", "", "workload JSONL (routelab workload generate)")
	policyPath := fs.String("policy", "", "policy JSON, e.g. datasets/policies/explore.json")
	out := fs.String("out", "", "logged events JSONL (default stdout)")
	seed := fs.Uint64("world-seed", 1, "seed of the simulated world's draws")
	feedback := fs.Float64("feedback", 1, "share of served requests the simulated user sends feedback on (0..1)")
	startTS := fs.Int64("start-ts", 1793491200000, "virtual time (unix ms) the run starts at; requests arrive 100 ms apart")
	textQA := addTextQAFlags(fs, 0.1)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *workload == "" || *policyPath == "" {
		return fmt.Errorf("--workload and --policy are required")
	}
	if *feedback < 0 || *feedback > 1 {
		return fmt.Errorf("--feedback must be in [0, 1], got %g", *feedback)
	}
	p, err := datasets.LoadPolicy(*policyPath)
	if err != nil {
		return err
	}
	items, err := datasets.LoadWorkload(*workload)
	if err != nil {
		return err
	}
	cfg := lab.Config{Catalog: router.Catalog{Models: p.Models}, World: sim.NewWorld(router.Catalog{Models: p.Models}, *seed), Seed: *seed, Start: time.UnixMilli(*startTS), Feedback: *feedback}
	if err := textQA.configure(env, "sim", &cfg); err != nil {
		return err
	}
	lb, err := lab.New(cfg, p)
	if err != nil {
		return err
	}
	dst := env.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		dst = f
	}
	start := time.Now()
	sum, err := lb.Log(ctx, items, dst, func(done int) {
		fmt.Fprintf(env.Stderr, "sim: %d/%d requests (%.0f/s)\n", done, len(items), float64(done)/time.Since(start).Seconds())
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "sim: %d requests through %s in %s: success %.3f, mean cost $%.4f\n",
		sum.Requests, p.Version, time.Since(start).Round(time.Millisecond), sum.Success, sum.MeanCost)
	writeTextSummary(env, "sim", sum)
	return nil
}
