package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/routelab/routelab/datasets"
	"github.com/routelab/routelab/devstack"
	"github.com/routelab/routelab/router"
	"github.com/routelab/routelab/server/loadgen"
)

func runLoadgen(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("loadgen", `Drive a running serve with a workload: POST /v1/images for each workload item,
as --users distinct users (the experiment unit), at --rate requests/s (0 = as
fast as --concurrency allows), for --requests N or --duration D. Users send
feedback (thumbs up when the image passed QA, down otherwise) on
--feedback-rate of their requests. Progress goes to stderr every second; the
summary (JSON with --json) to stdout.

The workload is a JSONL file from `+"`routelab workload generate`"+` (--workload FILE), or
the built-in mix (generated from --seed): text rendering, layouts, photoreal,
abstract, avatars, illustrations, edit chains. The target and API key default
to ROUTELAB_API_URL/ROUTELAB_API_KEY, then dev.json under --data-dir.`)
	target := fs.String("target", "", "serve base URL (env ROUTELAB_API_URL; default dev.json api)")
	apiKey := fs.String("api-key", "", "tenant API key (env ROUTELAB_API_KEY; default dev.json api_key)")
	dataDir := fs.String("data-dir", "./.routelab", "routelab dev data dir holding dev.json (env ROUTELAB_DATA_DIR)")
	workload := fs.String("workload", "", "workload JSONL file (default: the built-in mix)")
	rate := fs.Float64("rate", 0, "requests per second (0 = unlimited)")
	requests := fs.Int("requests", 0, "stop after this many requests")
	duration := fs.Duration("duration", 0, "stop after this long")
	users := fs.Int("users", 1000, "distinct users")
	concurrency := fs.Int("concurrency", 64, "requests in flight at most (serve's default per-provider concurrency is 64)")
	feedback := fs.Float64("feedback-rate", 0.2, "share of requests the user gives feedback on")
	seed := fs.Uint64("seed", 1, "random seed (workload and user draws)")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	size := fs.String("size", "", "send every request at this size (WxH, e.g. 1024x1024) instead of the workload's mix of sizes; routes follow it\n(a model that does not list the size is not eligible, and rules and the classifier read it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	envDefault(fs, env, "target", "ROUTELAB_API_URL")
	envDefault(fs, env, "api-key", "ROUTELAB_API_KEY")
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	if *target == "" || *apiKey == "" {
		if d, err := devstack.ReadInfo(*dataDir); err == nil {
			if *target == "" {
				*target = d.API
			}
			if *apiKey == "" {
				*apiKey = d.APIKey
			}
		}
	}
	switch {
	case *target == "" || *apiKey == "":
		return errors.New("--target and --api-key are required (or env, or dev.json)")
	case (*requests > 0) == (*duration > 0):
		return errors.New("give exactly one of --requests N and --duration D")
	case *requests < 0 || *duration < 0 || *users < 1 || *concurrency < 1 || *rate < 0:
		return errors.New("--requests, --duration, --users, --concurrency and --rate must be positive")
	case *feedback < 0 || *feedback > 1:
		return errors.New("--feedback-rate must be in [0, 1]")
	}
	if !strings.Contains(*target, "://") {
		*target = "http://" + *target
	}
	items, err := datasets.LoadOrGenerate(*workload, *seed, *requests)
	if err != nil {
		return err
	}
	if *size != "" {
		w, h, err := router.ParseSize(*size)
		if err != nil {
			return fmt.Errorf("--size: %w", err)
		}
		for i := range items {
			items[i].Request.Width, items[i].Request.Height = w, h
		}
	}
	fmt.Fprintf(env.Stderr, "loadgen: target %s, key %s, %d workload items, %d users, concurrency %d, rate %g/s\n",
		*target, mask(*apiKey), len(items), *users, *concurrency, *rate)
	sum, err := loadgen.Run(ctx, loadgen.Config{
		Target: *target, Key: *apiKey, Items: items, Users: *users, Feedback: *feedback, Seed: *seed,
		Requests: *requests, Duration: *duration, Rate: *rate, Concurrency: *concurrency, Progress: env.Stderr,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, sum)
	}
	sum.WriteText(env.Stdout)
	return nil
}
