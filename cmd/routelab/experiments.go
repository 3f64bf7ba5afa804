package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/routelab/routelab/experiments"
)

// experimentCommands are the subcommands of `routelab experiments`.
func experimentCommands() map[string]command {
	return map[string]command{
		"create":   {"create an experiment from a spec file (prints its id)", runExperimentsCreate},
		"list":     {"list experiments", runExperimentsList},
		"show":     {"show one experiment's spec", runExperimentsShow},
		"update":   {"replace an experiment's definition (a biasing change starts a new phase)", runExperimentsUpdate},
		"start":    {"start an experiment", expTransition("start")},
		"pause":    {"pause an experiment (no new assignments)", expTransition("pause")},
		"stop":     {"stop an experiment for good", expTransition("stop")},
		"ramp":     {"set a running experiment's traffic, or move a canary to its next step", runExperimentsRamp},
		"results":  {"analyse an experiment from ClickHouse", runExperimentsResults},
		"power":    {"power and sample-size calculator (proportions or means)", runExperimentsPower},
		"validate": {"check the statistics by simulation (A/A, peeking, known effect, SRM)", runExperimentsValidate},
	}
}

func runExperiments(ctx context.Context, env Env, args []string) error {
	return group{Intro: `routelab experiments: A/B routing experiments and canary ramps.

Usage: routelab experiments COMMAND [flags]   (COMMAND --help for its flags)

Commands:`, Width: 9, Help: true, NoArgs: errUsage,
		Unknown: "unknown experiments command %q", UsageOnUnknown: true, Subs: experimentCommands()}.run(ctx, env, args)
}

func runExperimentsValidate(_ context.Context, env Env, args []string) error {
	cfg := experiments.DefaultValidation()
	fs := newFlagSet("experiments validate", `Validate the experiment statistics by seeded simulation:
  - A/A: --sims experiments, each testing a success rate, a thumbs-up rate and
    mean latency; the false-positive rate at alpha must be close to alpha and
    the intervals must cover the truth at 1-alpha;
  - known effect: experiments sized by the power calculator; the observed
    power must match it and intervals must cover the true effects;
  - peeking: A/A data looked at every --peek-every units per arm; the
    fixed-horizon test inflates its false-positive rate, mSPRT stays <= alpha;
  - SRM: 100,000 units through the real assigner, then with a 1-point
    allocation bug (49/51 instead of 50/50), which the chi-square test flags.`)
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	fs.IntVar(&cfg.Sims, "sims", cfg.Sims, "simulated experiments per scenario")
	fs.IntVar(&cfg.PeekEvery, "peek-every", cfg.PeekEvery, "units per arm between looks in the peeking scenario")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Sims < 100 || cfg.PeekEvery < 1 {
		return fmt.Errorf("--sims must be >= 100 and --peek-every >= 1")
	}
	start := time.Now()
	fmt.Fprintf(env.Stderr, "validate: seed %d, %d simulated experiments per scenario\n", cfg.Seed, cfg.Sims)
	r := experiments.Validate(cfg)
	fmt.Fprintf(env.Stderr, "validate: done in %s\n", time.Since(start).Round(time.Millisecond))
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(r)
	}
	r.WriteText(env.Stdout)
	return nil
}
