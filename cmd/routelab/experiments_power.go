package main

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/routelab/routelab/experiments"
)

// powerResult is what `experiments power` prints.
type powerResult struct {
	Metric      string  `json:"metric"` // proportion | mean
	Baseline    float64 `json:"baseline,omitempty"`
	MDE         float64 `json:"mde"`
	SD          float64 `json:"sd,omitempty"`
	Alpha       float64 `json:"alpha"`
	Power       float64 `json:"power"`
	UnitsPerArm float64 `json:"units_per_arm"`
}

func runExperimentsPower(_ context.Context, env Env, args []string) error {
	fs := newFlagSet("experiments power", `Power and sample-size calculator for a two-arm test (two-sided).

Proportions (R's power.prop.test): --baseline P --mde D, where D is the absolute
difference to detect. Means (R's power.t.test, noncentral t): --sd S --mde D.
Give --units N (per arm) for the power at N; otherwise the units per arm needed
for --power.

  routelab experiments power --baseline 0.6 --mde 0.02
  routelab experiments power --baseline 0.6 --mde 0.02 --units 5000
  routelab experiments power --sd 1200 --mde 100 --power 0.9`)
	baseline := fs.Float64("baseline", 0, "control rate (proportion metric)")
	sd := fs.Float64("sd", 0, "per-unit standard deviation (mean metric)")
	mde := fs.Float64("mde", 0, "absolute difference to detect")
	alpha := fs.Float64("alpha", 0.05, "significance level")
	power := fs.Float64("power", 0.8, "target power")
	units := fs.Float64("units", 0, "units per arm: compute the power at this size")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *mde == 0:
		return errors.New("--mde is required")
	case (*baseline > 0) == (*sd > 0):
		return errors.New("give --baseline (proportion) or --sd (mean), not both")
	case *baseline > 0 && (*baseline >= 1 || *baseline+*mde <= 0 || *baseline+*mde >= 1):
		return errors.New("--baseline and --baseline + --mde must lie in (0, 1)")
	case !(*alpha > 0 && *alpha < 0.5) || !(*power > 0 && *power < 1) || *units < 0:
		return errors.New("--alpha must be in (0, 0.5), --power in (0, 1), --units >= 0")
	}
	r := powerResult{MDE: *mde, Alpha: *alpha, Power: *power, UnitsPerArm: *units}
	if *baseline > 0 {
		r.Metric, r.Baseline = "proportion", *baseline
		if *units > 0 {
			r.Power = experiments.PowerProportions(*baseline, *baseline+*mde, *units, *alpha)
		} else {
			r.UnitsPerArm = math.Ceil(experiments.SampleSizeProportions(*baseline, *baseline+*mde, *alpha, *power))
		}
	} else {
		r.Metric, r.SD = "mean", *sd
		if *units > 0 {
			if *units < 2 {
				return errors.New("--units must be >= 2")
			}
			r.Power = experiments.PowerMeans(*mde, *sd, *units, *alpha)
		} else {
			n, err := experiments.SampleSizeMeans(*mde, *sd, *alpha, *power)
			if err != nil {
				return err
			}
			r.UnitsPerArm = math.Ceil(n)
		}
	}
	if *asJSON {
		return printJSON(env.Stdout, r)
	}
	fmt.Fprintf(env.Stdout, "%s metric, difference %g at alpha %g: %.0f units per arm for power %.3f\n", r.Metric, r.MDE, r.Alpha, r.UnitsPerArm, r.Power)
	return nil
}
