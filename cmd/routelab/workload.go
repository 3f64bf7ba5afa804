package main

import (
	"context"
	"fmt"
	"os"

	"github.com/routelab/routelab/datasets"
)

func runWorkload(ctx context.Context, env Env, args []string) error {
	sub := map[string]func(context.Context, Env, []string) error{
		"generate": runWorkloadGenerate,
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stdout, "Usage: routelab workload generate --seed S --n N --out W.jsonl\n\nMake a reproducible request workload (JSONL) for the lab.")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	f, ok := sub[args[0]]
	if !ok {
		return fmt.Errorf("unknown workload subcommand %q (want generate)", args[0])
	}
	return f(ctx, env, args[1:])
}

func runWorkloadGenerate(_ context.Context, env Env, args []string) error {
	fs := newFlagSet("workload generate", `Generate a request workload as JSONL, one {"request", "task", "source"} per line,
reproducible from --seed. Prompts come from templates and from PartiPrompts
(google-research/parti, Apache-2.0). The task is the simulated world's hidden truth:
routers only ever see the request.`)
	fs.SetOutput(env.Stderr)
	seed := fs.Uint64("seed", 1, "random seed")
	n := fs.Int("n", 10000, "number of requests")
	out := fs.String("out", "", "output file (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 {
		return fmt.Errorf("--n must be positive")
	}
	items, err := datasets.Generate(*seed, *n)
	if err != nil {
		return err
	}
	w := env.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
		defer fmt.Fprintf(env.Stderr, "workload: %d requests (seed %d) -> %s\n", len(items), *seed, *out)
	}
	return datasets.WriteWorkload(w, items)
}
