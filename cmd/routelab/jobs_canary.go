package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/routelab/routelab/experiments"
	chexp "github.com/routelab/routelab/experiments/clickhouse"
	"github.com/routelab/routelab/jobs"
	"github.com/routelab/routelab/server/client"
)

// canaryFlags are the --canary-* flags of jobs pipeline (jobs.CanaryConfig).
type canaryFlags struct {
	cfg      jobs.CanaryConfig
	specFile string
}

func addCanaryFlags(fs *pflag.FlagSet) *canaryFlags {
	c := &canaryFlags{}
	fs.Float64SliceVar(&c.cfg.Steps, "canary-steps", []float64{0.05, 0.2, 0.5}, "traffic ramp of the canary experiment (share of requests in it; the candidate arm gets half)")
	fs.DurationVar(&c.cfg.StepDuration, "canary-step-duration", 2*time.Minute, "how long each ramp step must hold with guardrails within limits (the last one before promotion)")
	fs.IntVar(&c.cfg.MinUnits, "canary-min-units", 200, "units per arm before a step advances and a guardrail is judged")
	fs.DurationVar(&c.cfg.Timeout, "canary-timeout", 30*time.Minute, "stop the canary (not promoted) when it has not passed by then")
	fs.DurationVar(&c.cfg.Poll, "canary-poll", 15*time.Second, "how often the canary's guardrails are read from ClickHouse")
	fs.StringVar(&c.cfg.Unit, "canary-unit", "request", "randomisation unit of the canary: request, user or tenant")
	fs.StringVar(&c.cfg.Layer, "canary-layer", "policy-canary", "experiment layer the canary takes whole (one policy canary at a time)")
	fs.StringVar(&c.specFile, "canary-spec", "", "experiment spec to start from (guardrails, targeting, primary metric); its arms, ramp, unit and layer are replaced")
	return c
}

// config validates the flags and reads --canary-spec.
func (c *canaryFlags) config() (jobs.CanaryConfig, error) {
	cfg := c.cfg
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if c.specFile == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(c.specFile)
	if err != nil {
		return cfg, err
	}
	s, err := experiments.ParseSpec(b)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", c.specFile, err)
	}
	cfg.Template = &s
	return cfg, nil
}

// The admin API client and the ClickHouse reader are what the canary and
// the guardrail monitor run on.
var (
	_ jobs.ExperimentControl = (*client.Admin)(nil)
	_ jobs.CanaryReader      = (*chexp.Reader)(nil)
	_ jobs.LookReader        = (*chexp.Reader)(nil)
)
